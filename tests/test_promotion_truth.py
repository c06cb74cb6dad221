"""The remote's tip is the truth: findings 1-11 of issue 12, each reproduced first, then fixed.

Real parts: one `mlflow server` per module (three wine versions), bare remotes on disk with real
pre-receive hooks, the CLI as subprocesses killed with real SIGKILL at a named step
(tests/race_kit.py wraps the real git and kubectl to hang there), real kustomize.
Stand-in: GitHub's REST API (cannot run here) is a loopback recorder (RecordingServer).
"""

from __future__ import annotations

import json
import signal
import subprocess
import time

import pytest

from tests.mlflow_harness import RecordingServer
from tests.promotion_fixtures import WINE, make_repo, registry, repo, subject_of, trailers_of  # noqa: F401
from tests.race_kit import commits_since, deployed, slow_step_env, ticket_hook
from tests.test_faults import _killpg, _linear, _slow_hook, _spawn, _wait_for

pytestmark = pytest.mark.slow
FIGURES: dict[str, dict] = {}  # docs/reliability.md quotes them (printed at the end, -s to see)


@pytest.fixture(scope="module", autouse=True)
def _figures():
    yield
    print("\nissue-12 fault figures:\n" + json.dumps(FIGURES, indent=2, sort_keys=True))


def _ok(res: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert res.returncode == 0, f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    return res


@pytest.fixture(scope="module")
def v(registry) -> tuple[str, str, str]:
    """Three versions, each no worse than the one before (v3 shares v2's run)."""
    return registry.v1, registry.v2, registry.create_version_like(WINE, registry.v2)["version"]


def _dev_at(repo, *versions: str) -> None:
    for version in versions:
        _ok(repo.promote(f"{WINE}/{version}", "--env", "dev"))


# -- 1, 2: rollback ----------------------------------------------------------------------------------


def test_1_second_rollback_goes_further_back_never_forward(repo, v):
    a, b, c = v
    _dev_at(repo, a, b, c)
    head = repo.remote_head()
    dry = _ok(repo.cli("rollback", WINE, "--env", "dev", "--dry-run"))
    assert "dry run" in dry.stdout and f"{c} -> {b}" in dry.stdout and repo.remote_head() == head
    _ok(repo.cli("rollback", WINE, "--env", "dev"))
    assert deployed(repo.remote, WINE, "dev") == (b, f"rollback from {c} to {b}")
    dry = _ok(repo.cli("release", WINE, "--env", "dev", "--dry-run"))
    assert "dry run" in dry.stdout and deployed(repo.remote, WINE, "dev")[1] is not None
    _ok(repo.cli("release", WINE, "--env", "dev"))
    _ok(repo.cli("rollback", WINE, "--env", "dev"))
    assert deployed(repo.remote, WINE, "dev") == (a, f"rollback from {b} to {a}")
    assert subject_of(repo.remote, "refs/heads/main") == f"rollback(dev): {WINE} {b} -> {a} (hold)"
    head = repo.remote_head()
    again = _ok(repo.cli("rollback", WINE, "--env", "dev"))  # still held: converges, no commit
    assert "already rolled back" in again.stdout and repo.remote_head() == head
    _ok(repo.cli("release", WINE, "--env", "dev"))
    last = repo.cli("rollback", WINE, "--env", "dev")
    assert last.returncode == 1 and f"no version deployed before {a} is recorded" in last.stderr
    assert "--to" in last.stderr and deployed(repo.remote, WINE, "dev") == (a, None)


def test_2_rollback_killed_during_push_then_rerun_converges(repo, v, tmp_path):
    a, b, c = v
    _dev_at(repo, a, b, c)
    start = repo.remote_head()
    marker = tmp_path / "push-in-flight"
    hook = _slow_hook(repo.remote, marker, 60)
    proc = _spawn(["rollback", WINE, "--env", "dev"], repo.root, repo.env())
    _wait_for(marker.exists, 60, "the rollback's push reaching the hook")
    _killpg(proc)
    assert proc.returncode == -signal.SIGKILL and repo.remote_head() == start
    hook.unlink()
    t0 = time.monotonic()
    _ok(repo.cli("rollback", WINE, "--env", "dev"))
    rerun_s = time.monotonic() - t0
    _ok(repo.cli("rollback", WINE, "--env", "dev"))  # a second rerun moves nothing either
    landed = commits_since(repo.remote, start)
    assert [(t["Previous-Version"], t["Model-Version"]) for t in landed] == [(c, b)]
    assert deployed(repo.remote, WINE, "dev") == (b, f"rollback from {c} to {b}")
    _linear(repo.remote)
    FIGURES["rollback_killed_in_push"] = {"rerun_s": round(rerun_s, 2), "rollback_commits": len(landed)}


# -- 3: a hold placed while an automatic promotion is in flight ---------------------------------------


def test_3_hold_placed_during_automatic_promotion_wins(repo, registry, v, tmp_path):
    a, b, c = v
    _dev_at(repo, a, b)
    stale = repo.clone(tmp_path / "stale")  # a checkout that will not pull the hold
    registry.set_alias("candidate", c)
    tickets = tmp_path / "tickets"
    ticket_hook(repo.remote, tickets, gates=1)
    auto = _spawn(["promote", f"{WINE}@candidate", "--trigger", "webhook", "--repo-url", str(repo.remote)],
                  tmp_path, repo.env())
    _wait_for((tickets / "inflight-1").exists, 60, "the automatic promotion's push")
    _ok(repo.cli("rollback", WINE, "--env", "dev"))  # ticket 2: no gate, lands first
    (tickets / "gate-1").unlink()
    out, err = auto.communicate(timeout=120)
    assert auto.returncode == 0, out + err
    assert f"held: rollback from {b} to {a}" in out
    FIGURES["hold_during_automatic"] = {"outcome": "re-decided on the new tip: held", "commits_by_it": 0}
    assert deployed(repo.remote, WINE, "dev") == (a, f"rollback from {b} to {a}")
    rec = stale.cli("reconcile", "-o", "json")
    items = json.loads(rec.stdout)["items"]
    assert [i["action"] for i in items if i["env"] == "dev"] == ["held"], rec.stdout
    assert deployed(repo.remote, WINE, "dev") == (a, f"rollback from {b} to {a}")
    _linear(repo.remote)


# -- 5: a human git revert ------------------------------------------------------------------------------


def test_5_reverted_staging_promotion_no_longer_counts_as_ran_in_staging(repo, v):
    a, b, _ = v
    _ok(repo.promote(f"{WINE}/{a}", "--env", "staging"))
    _ok(repo.promote(f"{WINE}/{b}", "--env", "staging"))
    repo.git("pull", "-q", "--ff-only")
    repo.git("revert", "--no-edit", "HEAD")
    repo.git("push", "-q", "origin", "HEAD:main")
    assert deployed(repo.remote, WINE, "staging")[0] == a
    res = repo.promote(f"{WINE}/{b}", "--env", "prod")
    assert res.returncode == 1 and f"has not run in staging" in res.stderr, res.stdout + res.stderr
    hist = json.loads(_ok(repo.cli("history", WINE, "--env", "staging", "-o", "json")).stdout)
    assert (hist[0]["from_version"], hist[0]["to_version"], hist[0]["trigger"]) == (b, a, "git")
    assert hist[0]["subject"].startswith("Revert ")
    _ok(repo.promote(f"{WINE}/{a}", "--env", "prod"))  # a really ran there


# -- 6: killed between writing the release files and committing -------------------------------------------


@pytest.mark.parametrize("step", ["kustomize", "add", "commit"])
def test_6_kill_between_edit_and_commit_then_rerun_promotes(repo, registry, v, tmp_path, step):
    a = v[0]
    registry.set_alias("candidate", a)
    start = repo.remote_head()
    marker = tmp_path / "at-step"
    env = repo.env(**slow_step_env(tmp_path, step, marker))
    proc = _spawn(["promote", f"{WINE}@candidate"], repo.root, env)
    _wait_for(marker.exists, 60, f"the promotion reaching `{step}`")
    _killpg(proc)
    assert repo.remote_head() == start and repo.porcelain() == ""
    status = json.loads(repo.cli("status", "-o", "json").stdout)
    dev = next(r for r in status["rows"] if r["env"] == "dev")
    assert dev["git_version"] is None and dev["drift"] == ["candidate"]
    t0 = time.monotonic()
    rerun = _ok(repo.promote(f"{WINE}@candidate"))
    FIGURES[f"kill_at_{step}"] = {"rerun_s": round(time.monotonic() - t0, 2), "user_tree_dirty": False}
    assert f"{WINE} none -> {a} in dev: pushed" in rerun.stdout
    assert deployed(repo.remote, WINE, "dev") == (a, None)


# -- 7: never push local commits, never move the user's branch ----------------------------------------------


def test_7_feature_branch_wip_is_never_pushed(repo, registry, v):
    registry.set_alias("candidate", v[0])
    repo.git("checkout", "-q", "-b", "feature")
    (repo.root / "WIP.md").write_text("not reviewed\n")
    repo.git("add", "WIP.md")
    repo.git("commit", "-q", "-m", "WIP")
    wip = repo.head()
    res = _ok(repo.promote(f"{WINE}@candidate"))
    assert "on feature, not main: left as it is" in res.stdout
    assert repo.head() == wip and repo.git("rev-parse", "--abbrev-ref", "HEAD").strip() == "feature"
    assert subprocess.run(["git", "cat-file", "-e", f"{wip}^{{commit}}"], cwd=repo.remote,
                          capture_output=True).returncode != 0, "the WIP commit reached the remote"


def test_7_diverged_main_is_not_moved_and_no_push_is_never_published(repo, registry, v, tmp_path):
    a, b, c = v
    other = repo.clone(tmp_path / "other")
    _ok(other.promote(f"{WINE}/{a}", "--env", "staging"))  # the remote moves on
    (repo.root / "WIP.md").write_text("local only\n")
    repo.git("add", "WIP.md")
    repo.git("commit", "-q", "-m", "WIP on main")
    wip = repo.head()
    res = _ok(repo.promote(f"{WINE}/{a}", "--env", "dev"))
    assert "has commits the remote does not: left as it is" in res.stdout
    assert repo.head() == wip and repo.git("rev-parse", "main").strip() == wip
    assert repo.remote_count() == 3 and deployed(repo.remote, WINE, "dev") == (a, None)
    kept = _ok(repo.promote(f"{WINE}/{b}", "--env", "dev", "--no-push"))
    branch = f"gitops-tool/unpushed/dev/{WINE}"
    assert f"kept on local branch {branch}" in kept.stdout
    pending = repo.git("rev-parse", branch).strip()
    _ok(repo.promote(f"{WINE}/{c}", "--env", "staging"))  # an unrelated promotion publishes nothing else
    assert repo.remote_count() == 4 and deployed(repo.remote, WINE, "dev") == (a, None)
    assert repo.git("rev-parse", branch).strip() == pending and repo.head() == wip  # nothing dropped


# -- 8: killed during push while another writer lands --------------------------------------------------------


def test_8_kill_during_push_plus_another_writer_then_rerun_lands(repo, registry, v, tmp_path):
    a, b, _ = v
    registry.set_alias("candidate", a)
    start = repo.remote_head()
    tickets = tmp_path / "tickets"
    hook = ticket_hook(repo.remote, tickets, gates=1)
    proc = _spawn(["promote", f"{WINE}@candidate"], repo.root, repo.env())
    _wait_for((tickets / "inflight-1").exists, 60, "the first push")
    _killpg(proc)
    other = repo.clone(tmp_path / "other")
    _ok(other.promote(f"{WINE}/{b}", "--env", "staging"))  # ticket 2 passes
    hook.unlink()
    rec = json.loads(_ok(repo.cli("reconcile", "-o", "json")).stdout)
    dev = [i for i in rec["items"] if i["env"] == "dev"]
    assert [i["action"] for i in dev] == ["promoted"], rec
    assert deployed(repo.remote, WINE, "dev") == (a, None) and deployed(repo.remote, WINE, "staging")[0] == b
    assert len(commits_since(repo.remote, start)) == 2
    _ok(repo.promote(f"{WINE}@candidate"))  # the rerun: already promoted
    assert len(commits_since(repo.remote, start)) == 2
    _linear(repo.remote)


# -- 9: two automatic writers, the newer alias state wins ------------------------------------------------------


def test_9_newer_registry_state_wins_over_an_older_event(repo, registry, v, tmp_path):
    """A (alias at b) and B (alias moved to c) both in flight; A lands first, B's push is refused by
    the remote and B re-decides on the new tip: Git ends at c, the registry's final state."""
    a, b, c = v
    _dev_at(repo, a)
    tickets = tmp_path / "tickets"
    ticket_hook(repo.remote, tickets, gates=2)
    args = ["promote", f"{WINE}@candidate", "--trigger", "webhook", "--repo-url", str(repo.remote)]
    registry.set_alias("candidate", b)
    first = _spawn(args, tmp_path, repo.env())
    _wait_for((tickets / "inflight-1").exists, 60, "A's push")
    registry.set_alias("candidate", c)
    second = _spawn(args, tmp_path, repo.env())
    _wait_for((tickets / "inflight-2").exists, 60, "B's push")
    (tickets / "gate-1").unlink()
    out_a, err_a = first.communicate(timeout=120)
    (tickets / "gate-2").unlink()
    out_b, err_b = second.communicate(timeout=120)
    assert first.returncode == 0 and second.returncode == 0, out_a + err_a + out_b + err_b
    assert deployed(repo.remote, WINE, "dev") == (c, None)
    assert trailers_of(repo.remote, "refs/heads/main")["Previous-Version"] == b
    attempts = out_b.split(" after ")[1].split()[0]
    FIGURES["two_automatic_writers"] = {"git_equals_registry": True, "newer_push_attempts": int(attempts)}
    _linear(repo.remote)


# -- 10: a failed --pr leaves nothing behind -------------------------------------------------------------------


def test_10_failed_pull_request_deletes_its_branch_and_says_so(repo, registry, v):
    registry.set_alias("candidate", v[0])

    def github(rec):
        if rec.method == "GET":
            return 200, {"Content-Type": "application/json"}, b"[]"
        return 422, {"Content-Type": "application/json"}, b'{"message": "Validation Failed"}'

    with RecordingServer(github) as fake:
        res = repo.promote(f"{WINE}@candidate", "--pr", env=repo.env(
            GITHUB_TOKEN="t", GITHUB_API_URL=fake.url, GITHUB_REPOSITORY="acme/platform"))
    assert res.returncode == 1 and "HTTP 422" in res.stderr
    assert "was pushed and deleted again; nothing is left" in res.stderr
    heads = subprocess.run(["git", "for-each-ref", "--format=%(refname)", "refs/heads"], cwd=repo.remote,
                           capture_output=True, text=True).stdout.split()
    assert heads == ["refs/heads/main"]


# -- 11: require_previous_stage in a shallow clone and after a squash ------------------------------------------


def test_11_previous_stage_gate_works_in_shallow_clones_and_after_squash(repo, registry, v, tmp_path):
    a, b, _ = v
    url = str(repo.remote)
    _ok(repo.promote(f"{WINE}/{a}", "--env", "staging", "--repo-url", url))
    for version in (a, b):  # the staging commit is no longer the tip
        _ok(repo.promote(f"{WINE}/{version}", "--env", "dev", "--repo-url", url))
    _ok(repo.promote(f"{WINE}/{a}", "--env", "prod", "--repo-url", url))  # depth-1 clone
    squashed = repo.clone(tmp_path / "squash")
    squashed.git("checkout", "-q", "--orphan", "squashed")
    squashed.git("commit", "-q", "-m", "squash everything")
    squashed.git("push", "-q", "--force", "origin", "squashed:main")
    _ok(repo.promote(f"{WINE}/{a}", "--env", "prod", "--force", "--repo-url", url))
    res = repo.promote(f"{WINE}/{b}", "--env", "prod", "--repo-url", url)
    assert res.returncode == 1 and "has not run in staging" in res.stderr


# -- 9 again, through two real receivers (replicas: 2) -------------------------------------------------------


def test_9_two_receivers_end_with_git_equal_to_the_registry(repo, registry, v, tmp_path):
    """Two `webhook serve --mode promote` processes; each gets one signed delivery, as MLflow sends them
    through a load balancer (the deliveries are posted by the test: one MLflow webhook has one URL).
    Both pushes are held by the hook, the older event's lands first, the newer one is refused by the
    remote and re-decides: Git ends at the registry's final version, history linear."""
    import os

    import requests

    from gitops_tool.mlflow_local import free_port
    from gitops_tool.webhook.signature import delivery_headers
    from tests.test_webhook_receiver import alias_body

    a, b, c = v
    _dev_at(repo, a)
    secret = tmp_path / "secret"
    secret.write_text("s3cr3t-" + os.urandom(8).hex() + "\n")
    env = repo.env()
    procs, urls = [], []
    for i in range(2):
        port = free_port()
        procs.append(_spawn(["webhook", "serve", "--host", "127.0.0.1", "--port", str(port), "--mode", "promote",
                             "--repo-url", str(repo.remote), "--secret-file", str(secret), "--config",
                             str(repo.root / "gitops.yaml"), "--tracking-uri", registry.url,
                             "--drift-interval", "0", "--workers", "1"], tmp_path, env))
        urls.append(f"http://127.0.0.1:{port}")
    try:
        def ready(url: str) -> bool:
            try:
                return requests.get(url + "/readyz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        for url in urls:
            _wait_for(lambda: ready(url), 60, f"{url}/readyz")
        tickets = tmp_path / "tickets"
        ticket_hook(repo.remote, tickets, gates=2)
        start = repo.remote_head()
        key = secret.read_text().strip()
        for i, (url, version) in enumerate(zip(urls, (b, c)), start=1):
            registry.set_alias("candidate", version)
            body = alias_body("candidate", version, name=WINE)
            resp = requests.post(url + "/webhooks/mlflow", data=body, headers=delivery_headers(key, body), timeout=10)
            assert resp.status_code == 202, resp.text
            _wait_for((tickets / f"inflight-{i}").exists, 60, f"receiver {i}'s push")
        (tickets / "gate-1").unlink()
        _wait_for(lambda: repo.remote_head() != start, 60, "the older event's commit")
        (tickets / "gate-2").unlink()
        _wait_for(lambda: deployed(repo.remote, WINE, "dev")[0] == c, 60, "the newer state in Git")
    finally:
        for proc in procs:
            _killpg(proc, signal.SIGTERM)
    landed = commits_since(repo.remote, start)
    assert [(t["Previous-Version"], t["Model-Version"]) for t in landed] == [(a, b), (b, c)]
    assert deployed(repo.remote, WINE, "dev") == (c, None)
    _linear(repo.remote)
    FIGURES["two_receivers"] = {"git_equals_registry": True, "commits": len(landed)}
