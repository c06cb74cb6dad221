"""rollback / release holds, history, status and `promote --pr`, through the real CLI.

Real parts: one `mlflow server` per module with two trained wine versions, bare remotes on disk, the
CLI as a subprocess. The one stand-in: GitHub's REST API, which cannot run here, is played by a
loopback recorder (tests/mlflow_harness.py RecordingServer) via GITHUB_API_URL; the branch push goes
to the real bare remote.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from gitops_tool.mlflow_local import free_port
from tests.mlflow_harness import RecordingServer
from tests.promotion_fixtures import (  # noqa: F401
    WINE, add_model_to_config, make_repo, registry, repo, subject_of, trailers_of,
)

pytestmark = pytest.mark.slow

HOLD = "gitops-tool.io/hold"


def _ok(res):
    assert res.returncode == 0, f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    return res


def _annotations(repo, env: str) -> dict:
    return yaml.safe_load(repo.release(env, f"{WINE}.yaml").read_text())["metadata"]["annotations"]


def _deployed(repo, env: str) -> tuple[str, str | None]:
    ann = _annotations(repo, env)
    return ann["gitops-tool.io/model-version"], ann.get(HOLD)


@pytest.fixture
def dev_at_v2(repo, registry):
    """dev promoted v1 then v2 through @candidate."""
    registry.set_alias("candidate", registry.v1)
    _ok(repo.promote(f"{WINE}@candidate"))
    registry.set_alias("candidate", registry.v2)
    _ok(repo.promote(f"{WINE}@candidate"))
    return repo


def test_rollback_holds_automatic_promotions_until_forced(dev_at_v2, registry):
    repo, v1, v2 = dev_at_v2, registry.v1, registry.v2
    res = _ok(repo.cli("rollback", WINE, "--env", "dev"))
    assert "hold placed" in res.stdout and f"gitops-tool release {WINE} --env dev" in res.stdout
    assert _deployed(repo, "dev") == (v1, f"rollback from {v2} to {v1}")
    assert subject_of(repo.root) == f"rollback(dev): {WINE} {v2} -> {v1} (hold)"
    t = trailers_of(repo.root)
    assert (t["Trigger"], t["Model-Version"], t["Previous-Version"], t["Hold"]) == (
        "rollback", v1, v2, f"rollback from {v2} to {v1}")
    assert t["Image"] == f"registry.example.com/ml/wine-classifier:v{v1}"
    assert repo.head() == repo.remote_head()
    held_at = repo.head()

    for trigger in ("reconcile", "webhook"):
        res = _ok(repo.promote(f"{WINE}@candidate", "--trigger", trigger))
        assert f"held: rollback from {v2} to {v1}" in res.stdout and "no commit" in res.stdout
    res = repo.promote(f"{WINE}@candidate")
    assert res.returncode == 1
    assert "on hold" in res.stderr and "--force" in res.stderr and f"gitops-tool release {WINE}" in res.stderr
    assert repo.head() == repo.remote_head() == held_at and repo.porcelain() == ""

    out = json.loads(_ok(repo.promote(f"{WINE}@candidate", "--force", "-o", "json")).stdout)
    assert (out["from"], out["to"], out["pushed"]) == (v1, v2, True)
    assert _deployed(repo, "dev") == (v2, None)  # --force lifted the hold


def test_release_lifts_the_hold_and_automation_resumes(dev_at_v2, registry):
    repo, v1, v2 = dev_at_v2, registry.v1, registry.v2
    res = repo.cli("release", WINE, "--env", "dev")
    assert res.returncode == 1 and "has no hold to release" in res.stderr
    _ok(repo.cli("rollback", WINE, "--env", "dev", "--to", v1))
    held_at = repo.remote_head()
    again = repo.cli("rollback", WINE, "--env", "dev", "--to", v1)  # a rerun converges: exit 0, no commit
    assert again.returncode == 0 and "already rolled back" in again.stdout and "no commit" in again.stdout
    assert repo.remote_head() == held_at

    _ok(repo.cli("release", WINE, "--env", "dev"))
    assert _deployed(repo, "dev") == (v1, None)
    assert subject_of(repo.root) == f"release(dev): {WINE} hold lifted at {v1}"
    assert trailers_of(repo.root)["Trigger"] == "release"

    out = json.loads(_ok(repo.promote(f"{WINE}@candidate", "--trigger", "reconcile", "-o", "json")).stdout)
    assert out["skipped"] is None and (out["from"], out["to"]) == (v1, v2)
    assert trailers_of(repo.root)["Trigger"] == "reconcile"
    assert repo.remote_head() == out["commit"]


def test_rollback_errors_name_model_and_env(repo):
    res = repo.cli("rollback", WINE, "--env", "staging")
    assert res.returncode == 1 and f"{WINE} has never been promoted to staging" in res.stderr
    res = repo.cli("rollback", "ghost", "--env", "dev")
    assert res.returncode == 1 and "model 'ghost' is not defined" in res.stderr
    assert repo.remote_count() == 1 and repo.porcelain() == ""


def test_history_lists_promotions_rollbacks_releases_in_order(dev_at_v2, registry):
    repo, v1, v2 = dev_at_v2, registry.v1, registry.v2
    _ok(repo.cli("rollback", WINE, "--env", "dev"))
    _ok(repo.cli("release", WINE, "--env", "dev"))
    _ok(repo.promote(f"{WINE}/{v1}", "--env", "staging", "--trigger", "workflow"))
    shas = repo.git("log", "--format=%H", "-5").split()

    entries = json.loads(_ok(repo.cli("history", WINE, "-o", "json")).stdout)
    assert [e["commit"] for e in entries] == shas  # newest first, every promotion commit
    assert [(e["env"], e["from_version"], e["to_version"], e["alias"], e["trigger"]) for e in entries] == [
        ("staging", None, v1, None, "workflow"),
        ("dev", v1, v1, None, "release"),
        ("dev", v2, v1, None, "rollback"),
        ("dev", v1, v2, "candidate", "manual"),
        ("dev", None, v1, "candidate", "manual"),
    ]
    assert all(e["time"].endswith("+00:00") and e["model"] == WINE for e in entries)

    text = _ok(repo.cli("history", WINE)).stdout.splitlines()
    assert len(text) == 5
    newest = text[-2]
    assert "dev" in newest and f"{v1} -> {v2}" in newest and "@candidate" in newest and "manual" in newest
    assert newest.split()[-1] == shas[3][:12] and newest[:4].isdigit() and "Z" in newest.split()[1]
    assert "workflow" in text[0] and shas[0][:12] in text[0]

    only_staging = json.loads(_ok(repo.cli("history", WINE, "--env", "staging", "-o", "json")).stdout)
    assert [e["commit"] for e in only_staging] == [shas[0]]
    none = _ok(repo.cli("history", WINE, "--env", "prod")).stdout
    assert "no promotions of wine-classifier in prod yet" in none


def test_status_shows_git_version_aliases_drift_and_holds(dev_at_v2, registry):
    repo, v1, v2 = dev_at_v2, registry.v1, registry.v2
    _ok(repo.cli("rollback", WINE, "--env", "dev"))
    registry.set_alias("challenger", v2)
    registry.set_alias("champion", v1)
    data = json.loads(_ok(repo.cli("status", "-o", "json")).stdout)
    assert data["registry_error"] is None
    rows = {r["env"]: r for r in data["rows"] if r["model"] == WINE}
    assert rows["dev"]["git_version"] == v1 and rows["dev"]["hold"] == f"rollback from {v2} to {v1}"
    assert rows["dev"]["aliases"] == {"candidate": v2} and rows["dev"]["drift"] == ["candidate"]
    assert rows["staging"]["git_version"] is None and rows["staging"]["drift"] == ["challenger"]
    assert rows["prod"]["aliases"] == {"champion": v1} and rows["prod"]["hold"] is None
    assert rows["dev"]["image"] == f"registry.example.com/ml/wine-classifier:v{v1}"
    assert (rows["dev"]["cluster"], rows["prod"]["cluster"]) == ("in-cluster", "prod")

    lines = _ok(repo.cli("status")).stdout.splitlines()
    assert lines[0].startswith("registry of record: platform/main (")
    assert lines[1].split() == ["MODEL", "ENV", "CLUSTER", "GIT", "REGISTRY", "ALIASES", "DRIFT", "HOLD/CANARY"]
    dev = next(line for line in lines if line.split()[:2] == [WINE, "dev"])
    assert next(line for line in lines if line.split()[:2] == [WINE, "prod"]).split()[2] == "prod"
    assert f"@candidate={v2}" in dev and " yes " in dev and f"rollback from {v2} to {v1}" in dev

    dead = f"http://127.0.0.1:{free_port()}"
    res = repo.cli("status", "--tracking-uri", dead)
    assert res.returncode == 1 and f"registry: MLflow registry at {dead}" in res.stderr
    assert f"{WINE}" in res.stdout  # the Git side is still shown


def test_status_a_model_the_registry_lacks_is_not_an_unreachable_registry(tmp_path, registry):
    """Found following the README's onboarding: a model in gitops.yaml that nobody registered yet made
    `status` say "registry unreachable" and mark every model's drift unknown."""
    repo = make_repo(tmp_path, registry.url, edit_config=lambda t: add_model_to_config(t, "not-registered"))
    registry.set_alias("candidate", registry.v1)
    res = repo.cli("status")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "registry unreachable" not in res.stdout
    rows = {tuple(line.split()[:2]): line for line in res.stdout.splitlines()[2:]}
    assert f"@candidate={registry.v1}" in rows[(WINE, "dev")] and " yes " in rows[(WINE, "dev")]
    assert "@candidate=?" in rows[("not-registered", "dev")] and " unknown " in rows[("not-registered", "dev")]
    assert "not-registered: model 'not-registered'" in res.stderr and "not found" in res.stderr
    data = json.loads(repo.cli("status", "-o", "json").stdout)
    assert data["registry_reachable"] is True


# -- promote --pr --------------------------------------------------------------------------------


class FakeGitHub:
    """Answers like GitHub's pulls API: no open PR at first, then the one created."""

    def __init__(self):
        self.pr = None

    def __call__(self, rec):
        url = urlsplit(rec.path)
        if rec.method == "GET" and url.path == "/repos/o/r/pulls":
            body = [self.pr] if self.pr else []
            return 200, {"Content-Type": "application/json"}, json.dumps(body).encode()
        if rec.method == "POST" and url.path == "/repos/o/r/pulls":
            self.pr = {"number": 7, "html_url": "https://github.example/o/r/pull/7", "state": "open"}
            return 201, {"Content-Type": "application/json"}, json.dumps(self.pr).encode()
        if rec.method == "PATCH" and url.path == "/repos/o/r/pulls/7":
            return 200, {"Content-Type": "application/json"}, json.dumps(self.pr).encode()
        return 404, {"Content-Type": "application/json"}, b'{"message": "Not Found"}'


def test_pr_pushes_a_branch_and_opens_then_reuses_one_pull_request(repo, registry):
    """Stand-in: a loopback recorder plays the GitHub REST API (GITHUB_API_URL); the push is real."""
    branch = f"gitops-tool/promote/dev/{WINE}"
    main_before, head_before = repo.remote_head(), repo.head()
    with RecordingServer(FakeGitHub()) as gh:
        env = repo.env(GITHUB_API_URL=gh.url, GITHUB_TOKEN="t0ken", GITHUB_REPOSITORY="o/r")
        registry.set_alias("candidate", registry.v1)
        res = _ok(repo.promote(f"{WINE}@candidate", "--pr", env=env))
        assert "pull request: https://github.example/o/r/pull/7" in res.stdout
        first = repo.git("ls-remote", "origin", f"refs/heads/{branch}").split()[0]
        assert trailers_of(repo.remote, first)["Model-Version"] == registry.v1

        registry.set_alias("candidate", registry.v2)
        out = json.loads(_ok(repo.promote(f"{WINE}@candidate", "--pr", "-o", "json", env=env)).stdout)
        assert out["pull_request"] == "https://github.example/o/r/pull/7"
        second = repo.git("ls-remote", "origin", f"refs/heads/{branch}").split()[0]
        assert second == out["commit"] != first
        assert trailers_of(repo.remote, second)["Model-Version"] == registry.v2

        res = repo.promote(f"{WINE}@candidate", "--pr", env=repo.env(GITHUB_API_URL=gh.url))
        assert res.returncode == 1 and "GITHUB_TOKEN" in res.stderr
    # main never moved, locally or on the remote; the checkout is clean.
    assert repo.remote_head() == main_before and repo.head() == head_before and repo.porcelain() == ""
    calls = [(r.method, urlsplit(r.path).path) for r in gh.requests]
    assert calls == [("GET", "/repos/o/r/pulls"), ("POST", "/repos/o/r/pulls"),
                     ("GET", "/repos/o/r/pulls"), ("PATCH", "/repos/o/r/pulls/7")]
    query = parse_qs(urlsplit(gh.requests[0].path).query)
    assert query == {"state": ["open"], "head": [f"o:{branch}"]}
    created = json.loads(gh.requests[1].body)
    assert (created["head"], created["base"]) == (branch, "main")
    assert created["title"] == f"promote(dev): {WINE} none -> {registry.v1} (@candidate)"
    assert json.loads(gh.requests[3].body)["title"] == f"promote(dev): {WINE} none -> {registry.v2} (@candidate)"
    assert all(r.headers.get("Authorization") == "Bearer t0ken" for r in gh.requests)
