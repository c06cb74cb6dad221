"""Shared parts of the promotion tests: a real MLflow server per module, real Git repos, CLI helpers.

Import the fixtures explicitly in a test module (``from tests.promotion_fixtures import registry``).
Everything is real: ``mlflow server`` subprocesses with really trained wine versions, bare Git
remotes on disk, the ``gitops-tool`` CLI run as a subprocess (``python -m gitops_tool.cli.main``).
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pytest
import requests

from gitops_tool.gitrepo import init_bare_remote
from tests.conftest import run_cli
from tests.mlflow_harness import WineModel, seeded_wine_server

WINE = "wine-classifier"
API = "/api/2.0/mlflow"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Test Author", "GIT_AUTHOR_EMAIL": "author@example.com",
    "GIT_COMMITTER_NAME": "Test Committer", "GIT_COMMITTER_EMAIL": "committer@example.com",
}
# Variables from the developer's or CI's shell that would change what the CLI does.
_SCRUB = ("MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN",
          "GITHUB_STEP_SUMMARY", "GITHUB_TOKEN", "GITHUB_API_URL", "GITHUB_REPOSITORY", "GITOPS_TOOL_SCHEMA_DIR",
          "ARGOCD_AUTH_TOKEN")


def base_env(tracking_uri: str | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _SCRUB}
    env.update(GIT_IDENTITY)
    env["KUBECONFIG"] = os.devnull  # never a developer's real cluster: the Argo CD refresh step skips
    if tracking_uri:
        env["MLFLOW_TRACKING_URI"] = tracking_uri
    env.update(extra)
    return env


def git(cwd: Path, *args: str, check: bool = True) -> str:
    res = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, env=base_env(), timeout=120)
    if check and res.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} in {cwd} failed ({res.returncode}): {res.stderr}")
    return res.stdout


# -- the registry -------------------------------------------------------------------------------


@dataclass
class Registry:
    """The module's real MLflow server and its two wine versions (v1 accuracy ~0.926, v2 1.0)."""

    url: str
    wine: WineModel

    @property
    def v1(self) -> str:
        return self.wine.v1["version"]

    @property
    def v2(self) -> str:
        return self.wine.v2["version"]

    def _post(self, path: str, payload: dict) -> dict:
        resp = requests.post(f"{self.url}{API}/{path}", json=payload, timeout=30)
        assert resp.ok, f"{path}: {resp.status_code} {resp.text}"
        return resp.json()

    def set_alias(self, alias: str, version: str, model: str = WINE) -> None:
        self._post("registered-models/alias", {"name": model, "alias": alias, "version": str(version)})

    def set_version_tag(self, version: str, key: str, value: str, model: str = WINE) -> None:
        self._post("model-versions/set-tag", {"name": model, "version": str(version), "key": key, "value": value})

    def delete_version_tag(self, version: str, key: str, model: str = WINE) -> None:
        resp = requests.delete(f"{self.url}{API}/model-versions/delete-tag",
                               json={"name": model, "version": str(version), "key": key}, timeout=30)
        assert resp.ok, resp.text

    def get_version(self, version: str, model: str = WINE) -> dict:
        resp = requests.get(f"{self.url}{API}/model-versions/get", params={"name": model, "version": version},
                            timeout=30)
        assert resp.ok, resp.text
        return resp.json()["model_version"]

    def create_version_like(self, model: str, like: str) -> dict:
        """Register a version of ``model`` pointing at wine version ``like``'s logged model and run (REST).

        Much faster than training: same source, run_id and model_id, so the gates read the same metrics."""
        src = self.get_version(like)
        payload = {"name": model, "source": src["source"], "run_id": src["run_id"]}
        if src["source"].startswith("models:/"):
            payload["model_id"] = src["source"].removeprefix("models:/")
        return self._post("model-versions/create", payload)["model_version"]

    def add_model(self, model: str) -> tuple[str, str]:
        """Register ``model`` with two versions cloned from wine v1 and v2; returns their numbers."""
        resp = requests.post(f"{self.url}{API}/registered-models/create", json={"name": model}, timeout=30)
        assert resp.ok or "RESOURCE_ALREADY_EXISTS" in resp.text, resp.text
        return self.create_version_like(model, self.v1)["version"], self.create_version_like(model, self.v2)["version"]


@pytest.fixture(scope="module")
def registry(tmp_path_factory) -> Registry:
    """One real `mlflow server` (sqlite) per test module, with the two wine versions trained and registered."""
    with seeded_wine_server(tmp_path_factory) as (server, wine):
        yield Registry(server.url, wine)


# -- promotion repositories ---------------------------------------------------------------------


@dataclass
class PromoRepo:
    """A checkout made by `gitops-tool init`, committed and pushed to a bare remote on disk."""

    root: Path
    remote: Path
    uri: str | None

    def env(self, **extra: str) -> dict[str, str]:
        return base_env(self.uri, **extra)

    def cli(self, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
            ) -> subprocess.CompletedProcess:
        return run_cli(*args, cwd=cwd or self.root, env=env if env is not None else self.env())

    def promote(self, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.cli("promote", *args, **kw)

    def git(self, *args: str, check: bool = True) -> str:
        return git(self.root, *args, check=check)

    def head(self) -> str:
        return self.git("rev-parse", "HEAD").strip()

    def remote_head(self, branch: str = "main") -> str:
        return git(self.remote, "rev-parse", f"refs/heads/{branch}").strip()

    def remote_count(self, branch: str = "main") -> int:
        return int(git(self.remote, "rev-list", "--count", f"refs/heads/{branch}").strip())

    def porcelain(self) -> str:
        return self.git("status", "--porcelain", "--untracked-files=all")

    def snapshot(self) -> tuple[str, str, str]:
        """(local HEAD, remote main, git status) — what a failed promotion must leave as it was."""
        return self.head(), self.remote_head(), self.porcelain()

    def release(self, env: str, name: str = "kustomization.yaml") -> Path:
        return self.root / "environments" / env / "release" / name

    def commit_and_push(self, message: str, *paths: str) -> str:
        self.git("add", "-A", "--", *(paths or ["."]))
        self.git("commit", "-q", "-m", message)
        self.git("push", "-q", "origin", "HEAD:refs/heads/main")
        return self.head()

    def sync(self) -> None:
        """Bring the checkout to the remote's main (after a --repo-url or another clone's push)."""
        self.git("fetch", "-q", "origin", "main")
        self.git("reset", "-q", "--hard", "origin/main")

    def clone(self, dest: Path) -> PromoRepo:
        git(dest.parent, "clone", "-q", str(self.remote), str(dest))
        return PromoRepo(dest, self.remote, self.uri)


def make_repo(base: Path, uri: str | None, *, edit_config: Callable[[str], str] | None = None,
              name: str = "platform", prod_approval: str = "direct") -> PromoRepo:
    """`init` a project whose repo.url is a new bare remote, (optionally edit gitops.yaml and regenerate),
    then `git init`, commit everything and push main.

    A bare remote on disk is no GitHub repository, so prod takes promotions directly unless a test asks
    for ``prod_approval="pull_request"`` (and sets repo.github_repository through ``edit_config``)."""
    from gitops_tool.project import generate, init_project

    base.mkdir(parents=True, exist_ok=True)
    remote = init_bare_remote(base / f"{name}-remote.git")
    root = base / name
    if prod_approval == "direct":
        init_project(root, repo_url=str(remote), prod_approval="direct")
    else:  # the starter's pull_request needs repo.github_repository: edit_config adds it, then generate
        from gitops_tool.project import starter_text

        root.mkdir(parents=True, exist_ok=True)
        (root / "gitops.yaml").write_text(starter_text(repo_url=str(remote)))
    if edit_config or prod_approval != "direct":
        cfg = root / "gitops.yaml"
        cfg.write_text((edit_config or str)(cfg.read_text()))
        generate(cfg)
    git(root, "init", "-q", "-b", "main")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "initial platform")
    git(root, "remote", "add", "origin", str(remote))
    git(root, "push", "-q", "-u", "origin", "main")
    return PromoRepo(root, remote, uri)


@pytest.fixture
def repo(tmp_path, registry) -> PromoRepo:
    """A fresh promotion repo (starter config) talking to the module's registry."""
    return make_repo(tmp_path, registry.url)


def trailers_of(repo_dir: Path, rev: str = "HEAD") -> dict[str, str]:
    """The commit's trailers as `git interpret-trailers --parse` reads them (not our own parser)."""
    message = git(repo_dir, "log", "-1", "--format=%B", rev)
    res = subprocess.run(["git", "interpret-trailers", "--parse"], input=message, capture_output=True,
                         text=True, check=True)
    out = {}
    for line in res.stdout.splitlines():
        key, _, value = line.partition(":")
        out[key.strip()] = value.strip()
    return out


def subject_of(repo_dir: Path, rev: str = "HEAD") -> str:
    return git(repo_dir, "log", "-1", "--format=%s", rev).strip()


def add_model_to_config(text: str, name: str, *, aliases: dict[str, str] | None = None,
                        gates: str = "") -> str:
    """Append a model entry to the starter gitops.yaml (models: is its last section)."""
    aliases = aliases or {"candidate": "dev", "challenger": "staging", "champion": "prod"}
    lines = [f"  {name}:", "    mode: image", f"    image_repository: registry.example.com/ml/{name}",
             "    aliases:"] + [f"      {a}: {e}" for a, e in aliases.items()]
    if gates:
        lines.append(gates)
    return text.rstrip("\n") + "\n" + "\n".join(lines) + "\n"
