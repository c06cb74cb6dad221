"""Entry points shared by the library and the CLI: init and generate."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from gitops_tool import __version__
from gitops_tool.config import CONFIG_FILE, Config, load_config
from gitops_tool.errors import GitopsError
from gitops_tool.platform.tree import MANAGED_DIRS, create_once_tree, generated_tree
from gitops_tool.platform.writer import FileAction, apply_actions, guard_drops, plan_actions


@dataclass(frozen=True)
class GenerateResult:
    root: Path
    actions: list[FileAction]

    @property
    def changed(self) -> list[FileAction]:
        return [a for a in self.actions if a.changes]


def generate(config_path: Path, *, write: bool = True, prune: bool = False) -> GenerateResult:
    """(Re)write base/, environments/<env>/ and argocd/ from gitops.yaml. `write=False` only plans."""
    cfg = load_config(config_path)
    return generate_from(cfg, write=write, prune=prune)


def generate_from(cfg: Config, *, write: bool = True, prune: bool = False) -> GenerateResult:
    actions = plan_actions(cfg.root, generated_tree(cfg), create_once_tree(cfg), MANAGED_DIRS)
    actions += guard_drops(cfg.root, actions, prune)
    if write:
        apply_actions(cfg.root, actions)
    return GenerateResult(cfg.root, actions)


def starter_config() -> str:
    return resources.files("gitops_tool.templates").joinpath("gitops.yaml").read_text()


STARTER_REPO_URL = "https://github.com/example-org/mlflow-gitops.git"
STARTER_REGISTRY = "registry.example.com/ml"
STARTER_DOMAIN = "example.com"
_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
_REGISTRY = re.compile(r"^[a-z0-9.-]+(:[0-9]+)?(/[a-z0-9._-]+)*$")


STARTER_PROD_CLUSTER = "    prod: https://prod.k8s.example.com\n"
_CLUSTER_URL = re.compile(r"^https://[^\s/]+(:[0-9]+)?(/[^\s]*)?$")


def _with_prod_cluster(text: str, prod_cluster: str) -> str:
    if prod_cluster == "in-cluster":  # one cluster for everything: no other destination to allow
        text = text.replace("  clusters:\n" + STARTER_PROD_CLUSTER, "  clusters: {}\n", 1)
        return text.replace("    cluster: prod\n", "    cluster: in-cluster\n", 1)
    if not _CLUSTER_URL.match(prod_cluster):
        raise GitopsError(f"--prod-cluster {prod_cluster!r}: not an https:// API server URL (or `in-cluster`)")
    return text.replace(STARTER_PROD_CLUSTER, f"    prod: {prod_cluster}\n", 1)


STARTER_PROD_APPROVAL = """\
    # Who may deploy: every promotion into prod opens (or updates) a pull request a person must
    # merge; branch protection enforces the review (`gitops-tool doctor` prints the settings).
    # pull_request is the default for prod; dev and staging take promotions directly.
    approval: pull_request
"""
DIRECT_PROD_APPROVAL = """\
    # Promotions land on repo.branch without review: pull requests need a GitHub repository, and
    # repo.url is not one. Set repo.github_repository and approval: pull_request to require review.
    approval: direct
"""


def starter_text(*, repo_url: str | None = None, registry: str | None = None, domain: str | None = None,
                 prod_cluster: str | None = None, prod_approval: str | None = None) -> str:
    """The starter gitops.yaml with the given real values in place of its placeholders."""
    text = starter_config()
    if prod_approval == "direct":
        text = text.replace(STARTER_PROD_APPROVAL, DIRECT_PROD_APPROVAL, 1)
    if repo_url:
        text = text.replace(STARTER_REPO_URL, repo_url, 1)
    if registry:
        registry = registry.rstrip("/")
        if not _REGISTRY.match(registry):
            raise GitopsError(f"--registry {registry!r}: not a registry path such as ghcr.io/acme")
        text = text.replace(STARTER_REGISTRY, registry)
        # The receiver and Job image: build it with the Dockerfile (or the release workflow) and push it there.
        text = text.replace("\nargocd:\n", f"\nimages:\n  gitops_tool: {registry}/gitops-tool:{__version__}\n"
                            "\nargocd:\n", 1)
    if prod_cluster:
        text = _with_prod_cluster(text, prod_cluster)
    if domain:
        if not _DOMAIN.match(domain):
            raise GitopsError(f"--host {domain!r}: not a domain name such as ml.acme.io")
        text = re.sub(rf"(host: mlflow(?:\.[a-z0-9-]+)?)\.{re.escape(STARTER_DOMAIN)}\b", rf"\1.{domain}", text)
    # The generated workflows install exactly this release (see `tool.package` in gitops.schema.json).
    return text.replace("\nargocd:\n", "\ntool:\n  # How the generated workflows install gitops-tool (a pip requirement).\n"
                        f"  package: gitops-tool=={__version__}\n\nargocd:\n", 1)


def init_project(directory: Path, *, repo_url: str | None = None, registry: str | None = None,
                 domain: str | None = None, prod_cluster: str | None = None,
                 prod_approval: str | None = None) -> GenerateResult:
    """Write the starter gitops.yaml for the wine-classifier example and generate the tree."""
    text = starter_text(repo_url=repo_url, registry=registry, domain=domain, prod_cluster=prod_cluster,
                        prod_approval=prod_approval)
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / CONFIG_FILE
    if target.exists():
        raise GitopsError(f"{target}: already exists; init never overwrites it", hint="run `gitops-tool generate`")
    target.write_text(text, encoding="utf-8")
    try:
        return generate(target)
    except BaseException:
        target.unlink(missing_ok=True)  # leave the directory as it was
        raise
