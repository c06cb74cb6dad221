"""Who may deploy: `environments.<env>.approval`, through the webhook receiver, reconcile and the CLI.

Real parts: one `mlflow server` per module with two trained wine versions (it sends real, signed
webhook deliveries), the receiver's app and promotion engine over real HTTP, bare Git remotes on disk,
the CLI as a subprocess, and every merge (merge commit, squash, rebase) done for real with git against
the bare remote. Stand-ins, because GitHub cannot run here: GitHub's REST API is played by
tests/github_standin.py behind a loopback RecordingServer (GITHUB_API_URL), and branch protection by a
real pre-receive hook on the bare remote that refuses pushes with GitHub's GH006 text.
"""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from pathlib import Path

import pytest
import requests

from gitops_tool.config import load_config, load_config_text
from gitops_tool.errors import GitopsError
from gitops_tool.project import starter_text
from tests.github_standin import GitHubStandIn
from tests.mlflow_harness import RecordingServer
from tests.promotion_fixtures import (  # noqa: F401
    WINE, PromoRepo, git, make_repo, registry, trailers_of,
)

pytestmark = pytest.mark.slow

SLUG = "acme/platform"
PROD_BRANCH = f"gitops-tool/promote/prod/{WINE}"
UNREACHABLE = "http://127.0.0.1:9"  # the discard port: connection refused
GATE = "      require_previous_stage: {prod: staging}\n"


def _ok(res):
    assert res.returncode == 0, f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    return res


def _with_github(text: str) -> str:
    """repo.url is a bare remote on disk: name the GitHub repository the stand-in plays; no staging-first gate."""
    text = text.replace("  remote: origin\n", f"  remote: origin\n  github_repository: {SLUG}\n", 1)
    return text.replace(GATE, "")


@pytest.fixture
def pr_repo(tmp_path, registry) -> PromoRepo:  # noqa: F811
    """The starter config (prod: approval pull_request) on a bare remote standing for acme/platform."""
    # platform.tracking_uri is where reviewers open the model version (the PR body links it).
    return make_repo(tmp_path, registry.url, prod_approval="pull_request",
                     edit_config=lambda t: _with_github(t).replace("http://127.0.0.1:5000", registry.url))


@pytest.fixture
def github():
    standin = GitHubStandIn(SLUG)
    with RecordingServer(standin) as server:
        standin.server = server
        yield standin


def _env(repo: PromoRepo, github: GitHubStandIn, **extra: str) -> dict[str, str]:
    return repo.env(GITHUB_API_URL=github.server.url, GITHUB_TOKEN="t0ken", **extra)


def _heads(remote: Path) -> dict[str, str]:
    out = git(remote, "for-each-ref", "--format=%(refname) %(objectname)", "refs/heads")
    return dict(line.split() for line in out.splitlines())  # refname -> commit


def _branch_sha(repo: PromoRepo, branch: str = PROD_BRANCH) -> str | None:
    return _heads(repo.remote).get(f"refs/heads/{branch}")


def _wait(check, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while not (value := check()):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)
    return value


# -- load-time errors ----------------------------------------------------------------------------


def test_production_defaults_to_pull_request_and_bad_values_name_the_field():
    cfg = load_config_text(starter_text())  # the starter's repo.url is on github.com
    assert {n: (e.production, e.approval) for n, e in cfg.environments.items()} == {
        "dev": (False, "direct"), "staging": (False, "direct"), "prod": (True, "pull_request")}
    assert cfg.github_repository == "example-org/mlflow-gitops"
    marked = starter_text().replace("  staging:\n    namespace: models-staging\n",
                                    "  staging:\n    namespace: models-staging\n    production: true\n")
    assert load_config_text(marked).environments["staging"].approval == "pull_request"

    bad = starter_text().replace("    approval: pull_request\n", "    approval: sometimes\n")
    with pytest.raises(GitopsError, match=r"environments\.prod\.approval") as exc:
        load_config_text(bad)
    assert "sometimes" in str(exc.value)

    local = starter_text(repo_url="/srv/git/platform.git")
    with pytest.raises(GitopsError, match=r"environments\.prod\.approval: approval pull_request") as exc:
        load_config_text(local)
    assert "'/srv/git/platform.git' is not a GitHub repository" in str(exc.value)
    assert "repo.github_repository" in str(exc.value)
    implicit = local.replace("    approval: pull_request\n", "")
    with pytest.raises(GitopsError, match=r"environments\.prod: approval pull_request \(the default for a "
                                          r"production environment named prod\)"):
        load_config_text(implicit)
    assert load_config_text(_with_github(local)).environments["prod"].approval == "pull_request"


def test_init_with_a_repository_not_on_github_needs_a_choice_for_prod(tmp_path):
    from tests.conftest import run_cli

    refused = run_cli("init", str(tmp_path / "a"), "--repo-url", "git@gitlab.com:acme/platform.git")
    assert refused.returncode == 1 and "environments.prod.approval" in refused.stderr
    assert "--prod-approval direct" in refused.stderr and not (tmp_path / "a" / "gitops.yaml").exists()
    _ok(run_cli("init", str(tmp_path / "b"), "--repo-url", "git@gitlab.com:acme/platform.git",
                "--prod-approval", "direct"))
    assert load_config(tmp_path / "b" / "gitops.yaml").environments["prod"].approval == "direct"


def test_only_pull_request_environments_give_the_promote_job_and_receiver_github_rights():
    from gitops_tool.platform.receiver import receiver
    from gitops_tool.platform.workflows import promote_workflow

    def rights(text: str) -> tuple[dict, set[str]]:
        cfg = load_config_text(text)
        job = promote_workflow(cfg)["jobs"]["promote"]
        container = next(d for d in receiver(cfg) if d["kind"] == "Deployment")["spec"]["template"]["spec"][
            "containers"][0]
        return job["permissions"], {e["name"] for e in container["env"]} | set(job["steps"][-1]["env"])

    permissions, env = rights(starter_text())
    assert permissions == {"contents": "write", "pull-requests": "write"} and "GITHUB_TOKEN" in env
    permissions, env = rights(starter_text(prod_approval="direct"))
    assert permissions == {"contents": "write"} and "GITHUB_TOKEN" not in env


# -- the webhook to prod: a pull request, nothing on main -----------------------------------------------


def test_webhook_to_prod_opens_then_updates_one_pull_request_and_squash_merge_lands_it(
        pr_repo, registry, github, monkeypatch):  # noqa: F811
    from gitops_tool.registry import RegistryClient
    from gitops_tool.webhook.app import WEBHOOK_PATH, create_app
    from gitops_tool.webhook.handlers import build_handler
    from gitops_tool.webhook.register import register_webhook
    from gitops_tool.webhook.server import running
    from gitops_tool.webhook.settings import ReceiverSettings

    repo, secret = pr_repo, "approval-test-secret"
    for key, value in _env(repo, github).items():
        monkeypatch.setenv(key, value)
    main_before = repo.remote_head()
    settings = ReceiverSettings(secrets=(secret,), config_path=repo.root / "gitops.yaml", host="127.0.0.1", port=0,
                                mode="promote", repo_url=str(repo.remote), tracking_uri=registry.url,
                                backoff=0.05, max_backoff=0.2, drift_interval=0)
    app = create_app(settings, build_handler(settings), load_config(repo.root / "gitops.yaml"))
    with running(app) as url, RegistryClient(registry.url) as client:
        register_webhook(client, url=url + WEBHOOK_PATH, secret=secret)
        try:
            time.sleep(1.2)  # MLFLOW_WEBHOOK_CACHE_TTL=1 on the local server
            registry.set_alias("champion", registry.v1)
            first = _wait(lambda: github.open_pulls(), 60, "the pull request")[0]
            first_sha = _branch_sha(repo)
            registry.set_alias("champion", registry.v2)
            _wait(lambda: f"-> {registry.v2}" in github.pulls[1]["title"], 60, "the pull request's update")
        finally:
            for hook in client.list_webhooks():
                client.delete_webhook(hook["webhook_id"])

    # Nothing on main; one branch, one pull request, updated in place by the second move.
    assert repo.remote_head() == main_before
    assert set(_heads(repo.remote)) == {"refs/heads/main", f"refs/heads/{PROD_BRANCH}"}
    assert len(github.pulls) == 1 and first["number"] == 1
    pull = github.pulls[1]
    assert (pull["head"]["ref"], pull["base"]["ref"]) == (PROD_BRANCH, "main")
    assert pull["title"] == f"promote(prod): {WINE} none -> {registry.v2} (@champion)"
    second_sha = _branch_sha(repo)
    assert second_sha != first_sha
    assert git(repo.remote, "rev-parse", f"{second_sha}^").strip() == main_before  # built on main's tip
    t = trailers_of(repo.remote, second_sha)
    assert (t["Model-Version"], t["Environment"], t["Trigger"], t["Alias"]) == (registry.v2, "prod", "webhook",
                                                                                 "@champion")
    uuid.UUID(t["Delivery-Id"])  # MLflow's own delivery id
    assert t["Alias-Moved-By"] == "not known (MLflow webhooks do not send it)"
    assert t["Delivered-At"].endswith("Z") and t["Run-Id"] == registry.wine.v2["run_id"]
    assert t["Version-Created-By"] == "not recorded by the registry"  # MLflow leaves a version's user_id empty
    run_user = requests.get(f"{registry.url}/api/2.0/mlflow/runs/get", params={"run_id": t["Run-Id"]},
                            timeout=30).json()["run"]["info"]["user_id"]
    assert t["Run-User"] == f"{run_user} (as the training client reported it)"
    body = pull["body"]
    assert "Actor: not known (MLflow webhooks do not send it)" in body
    assert f"{registry.url}/#/models/{WINE}/versions/{registry.v2}" in body
    assert "accuracy" in body and f"Delivery-Id: {t['Delivery-Id']}" in body
    assert f"Delivery: {t['Delivery-Id']} at {t['Delivered-At']}" in body
    assert f"Run: {t['Run-Id']}, by {run_user} (as the training client reported it)" in body

    status = json.loads(_ok(repo.cli("status", "-o", "json", env=_env(repo, github))).stdout)
    prod = next(r for r in status["rows"] if r["env"] == "prod")
    assert prod["git_version"] is None and prod["review"].startswith(
        f"pending review: https://github.com/{SLUG}/pull/1 (version {registry.v2})")
    text = _ok(repo.cli("status", env=_env(repo, github))).stdout
    assert "pending review" in text
    down = repo.cli("status", "-o", "json", env=repo.env(GITHUB_API_URL=UNREACHABLE))
    assert down.returncode == 0, down.stderr  # the registry answered; GitHub's silence is reported, not fatal
    down_json = json.loads(down.stdout)
    assert "unreachable" in down_json["github_error"]
    assert next(r for r in down_json["rows"] if r["env"] == "prod")["review"] == "review state unknown"

    # A person squash-merges it: a real `git merge --squash` on the remote's main, as GitHub does.
    merger = repo.clone(repo.root.parent / "merger")
    merger.git("fetch", "-q", "origin", PROD_BRANCH)
    message = merger.git("log", "-1", "--format=%B", "FETCH_HEAD")
    merger.git("merge", "-q", "--squash", "FETCH_HEAD")
    merger.git("commit", "-q", "-m", f"{pull['title']} (#1)\n\n{message.split(chr(10), 1)[1].strip()}")
    merger.git("push", "-q", "origin", "HEAD:main")
    github.close(1)

    status = json.loads(_ok(repo.cli("status", "-o", "json", env=_env(repo, github))).stdout)
    prod = next(r for r in status["rows"] if r["env"] == "prod")
    assert (prod["git_version"], prod["drift"], prod["review"]) == (registry.v2, [], None)
    history = json.loads(_ok(repo.cli("history", WINE, "--env", "prod", "-o", "json")).stdout)
    assert [(h["to_version"], h["trigger"]) for h in history] == [(registry.v2, "webhook")]


# -- the CLI and reconcile -----------------------------------------------------------------------------


def test_direct_to_prod_is_refused_without_force_and_recorded_with_it(pr_repo, registry, github):  # noqa: F811
    repo = pr_repo
    before = _heads(repo.remote)
    refused = repo.promote(f"{WINE}/{registry.v1}", "--env", "prod", "--direct", env=_env(repo, github))
    assert refused.returncode == 1
    assert "environments.prod.approval is pull_request" in refused.stderr and "--force" in refused.stderr
    assert _heads(repo.remote) == before and github.server.requests == [] and repo.porcelain() == ""

    _ok(repo.promote(f"{WINE}/{registry.v1}", "--env", "prod", "--direct", "--force", env=_env(repo, github)))
    assert repo.remote_count() == 2 and github.server.requests == []
    t = trailers_of(repo.remote, "refs/heads/main")
    assert t["Model-Version"] == registry.v1 and t["Trigger"] == "manual"
    assert "promote --direct --force; environments.prod.approval is pull_request" in t["Approval-Bypassed"]
    assert "Alias-Moved-By" not in t  # a person ran it: the commit's author


def test_dev_lands_directly_and_every_merge_style_gives_the_same_state(pr_repo, registry, github, tmp_path):  # noqa: F811
    repo = pr_repo
    v3 = registry.create_version_like(WINE, registry.v2)["version"]  # as good as v2: the gates let it follow
    for style, version in (("merge", registry.v1), ("squash", registry.v2), ("rebase", v3)):
        # prod: the CLI, like every trigger, opens the pull request; main does not move.
        main_before = repo.remote_head()
        registry.set_alias("champion", version)
        res = json.loads(_ok(repo.promote(f"{WINE}@champion", "-o", "json", env=_env(repo, github))).stdout)
        assert res["pull_request"] and repo.remote_head() == main_before, style
        number = int(res["pull_request"].rsplit("/", 1)[1])
        # dev: direct, while the pull request is open, so main moves on under it.
        registry.set_alias("candidate", version)
        calls = len(github.server.requests)
        dev = json.loads(_ok(repo.promote(f"{WINE}@candidate", "-o", "json", env=_env(repo, github))).stdout)
        assert dev["pushed"] and dev["pull_request"] is None and repo.remote_head() == dev["commit"], style
        assert len(github.server.requests) == calls  # dev never asks GitHub
        _merge_for_real(repo, tmp_path / style, style, number)
        github.close(number)
        status = json.loads(_ok(repo.cli("status", "-o", "json", env=_env(repo, github))).stdout)
        rows = {r["env"]: r for r in status["rows"]}
        assert (rows["prod"]["git_version"], rows["prod"]["drift"], rows["prod"]["review"]) == (version, [], None)
        assert rows["dev"]["git_version"] == version, style
        history = json.loads(_ok(repo.cli("history", WINE, "--env", "prod", "-o", "json")).stdout)
        assert history[0]["to_version"] == version and history[0]["trigger"] == "manual", style
    history = json.loads(_ok(repo.cli("history", WINE, "--env", "prod", "-o", "json")).stdout)
    assert [h["to_version"] for h in history] == [v3, registry.v2, registry.v1]


def _merge_for_real(repo: PromoRepo, where: Path, style: str, number: int) -> None:
    """What GitHub's merge button does, with git, on the bare remote's main."""
    merger = repo.clone(where)
    merger.git("fetch", "-q", "origin", PROD_BRANCH)
    if style == "merge":
        merger.git("merge", "-q", "--no-ff", "-m", f"Merge pull request #{number} from {SLUG}/{PROD_BRANCH}",
                   "FETCH_HEAD")
    elif style == "squash":
        merger.git("merge", "-q", "--squash", "FETCH_HEAD")
        message = merger.git("log", "-1", "--format=%B", "FETCH_HEAD")
        merger.git("commit", "-q", "-m", message.replace("\n", f" (#{number})\n", 1))
    else:  # rebase: the PR's commit replayed on main's new tip, main fast-forwarded to it
        merger.git("checkout", "-q", "-b", "pr", "FETCH_HEAD")
        merger.git("rebase", "-q", "main")
        merger.git("checkout", "-q", "main")
        merger.git("merge", "-q", "--ff-only", "pr")
    merger.git("push", "-q", "origin", "HEAD:main")
    merger.git("push", "-q", "origin", f":refs/heads/{PROD_BRANCH}")  # GitHub's "delete branch"


def test_reconcile_opens_the_pull_request_once_and_does_not_push_the_same_change_again(
        pr_repo, registry, github):  # noqa: F811
    repo = pr_repo
    registry.set_alias("champion", registry.v1)
    registry.set_alias("candidate", registry.v1)
    first = json.loads(_ok(repo.cli("reconcile", "-o", "json", env=_env(repo, github))).stdout)
    actions = {(i["env"], i["action"]) for i in first["items"] if i["alias"] != "challenger"}
    assert actions == {("dev", "promoted"), ("prod", "pull-request")}
    sha = _branch_sha(repo)
    again = json.loads(_ok(repo.cli("reconcile", "-o", "json", env=_env(repo, github))).stdout)
    prod = next(i for i in again["items"] if i["env"] == "prod")
    assert prod["action"] == "pull-request" and _branch_sha(repo) == sha  # a reviewer's approval survives
    assert len(github.pulls) == 1


def test_an_alias_moved_back_to_what_prod_runs_closes_the_stale_pull_request(pr_repo, registry, github):  # noqa: F811
    repo = pr_repo
    _ok(repo.promote(f"{WINE}/{registry.v1}", "--env", "prod", "--direct", "--force", env=_env(repo, github)))
    registry.set_alias("champion", registry.v2)
    opened = json.loads(_ok(repo.promote(f"{WINE}@champion", "-o", "json", env=_env(repo, github))).stdout)
    assert opened["pull_request"] and _branch_sha(repo)
    registry.set_alias("champion", registry.v1)  # back to what main deploys: the open PR would deploy v2
    res = json.loads(_ok(repo.promote(f"{WINE}@champion", "-o", "json", env=_env(repo, github))).stdout)
    assert res["skipped"] == "already promoted"
    assert github.pulls[1]["state"] == "closed" and "Closed by gitops-tool" in github.pulls[1]["body"]
    assert _branch_sha(repo) is None and set(_heads(repo.remote)) == {"refs/heads/main"}


# -- failures leave nothing behind ------------------------------------------------------------------


def test_github_unreachable_fails_retryably_and_pushes_nothing(pr_repo, registry, github, monkeypatch):  # noqa: F811
    from gitops_tool.webhook.handlers import promote_handler
    from gitops_tool.webhook.jobs import Job
    from gitops_tool.webhook.settings import ReceiverSettings

    repo = pr_repo
    before = _heads(repo.remote)
    registry.set_alias("champion", registry.v1)
    res = repo.promote(f"{WINE}@champion", env=repo.env(GITHUB_API_URL=UNREACHABLE, GITHUB_TOKEN="t"))
    assert res.returncode == 1 and "GitHub API at http://127.0.0.1:9 unreachable" in res.stderr
    assert _heads(repo.remote) == before

    monkeypatch.setenv("GITHUB_API_URL", UNREACHABLE)
    monkeypatch.setenv("GITHUB_TOKEN", "t")
    handle = promote_handler(ReceiverSettings(secrets=("s",), config_path=repo.root / "gitops.yaml", mode="promote",
                                              repo_url=str(repo.remote), tracking_uri=registry.url))
    with pytest.raises(GitopsError) as exc:
        handle(Job(str(uuid.uuid4()), WINE, "champion", registry.v1, "prod", time.time()))
    assert exc.value.retryable  # the receiver retries it with backoff
    assert _heads(repo.remote) == before

    # GitHub answers the lookup but refuses to create: the pushed branch is deleted again.
    github.fail_writes = 502
    res = repo.promote(f"{WINE}@champion", env=_env(repo, github))
    assert res.returncode == 1 and "HTTP 502" in res.stderr and "deleted again" in res.stderr
    assert _heads(repo.remote) == before


def test_a_protected_branch_refusal_names_the_rule(pr_repo, registry):  # noqa: F811
    """Stand-in for GitHub's branch protection: a pre-receive hook that answers like GitHub (GH006)."""
    repo = pr_repo
    hook = repo.remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'error: GH006: Protected branch update failed for refs/heads/main.' >&2\n"
                    "echo 'error: Changes must be made through a pull request.' >&2\nexit 1\n")
    hook.chmod(0o755)
    registry.set_alias("candidate", registry.v1)
    res = repo.promote(f"{WINE}@candidate")
    assert res.returncode == 1
    assert ("refused by branch protection on refs/heads/main (GH006): Changes must be made through a pull "
            "request") in res.stderr
    assert "approval: pull_request" in res.stderr
    subprocess.run(["git", "-C", str(repo.root), "status"], check=True, capture_output=True)
