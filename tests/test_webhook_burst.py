"""Coalescing end to end: real MLflow deliveries, the real receiver subprocess, a real bare remote.

`mlflow server` (sqlite) signs and sends every alias move to `gitops-tool webhook serve --mode
promote` (2 workers, warm clones). A real pre-receive hook (tests/race_kit.ticket_hook) holds the
first push, so the burst that follows is queued while a job of each pair is running (the second one
waits for its push turn): the outcome is then fixed, whatever order MLflow's thread pool delivers in.
Two models in one environment (prod) run at the same time; the second waits for the push turn, moves
to the tip the first pushed and decides again there. Nothing here is a stand-in.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from gitops_tool.mlflow_local import free_port
from gitops_tool.registry import RegistryClient
from gitops_tool.webhook.register import register_webhook
from tests.mlflow_harness import process_alive
from tests.promotion_fixtures import add_model_to_config, base_env, git, make_repo, registry  # noqa: F401
from tests.race_kit import deployed, ticket_hook

CLI = [sys.executable, "-m", "gitops_tool.cli.main"]
IRIS = "iris-classifier"


def _no_gates(text: str) -> str:
    text, removed = re.subn(r"(?m)^    gates:\n(?:      .*\n)+", "", text)
    assert removed == 1
    return add_model_to_config(text, IRIS)


def _events(log: Path) -> list[dict]:
    out = []
    for line in log.read_text(errors="replace").splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass
    return out


def _wait(predicate, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def receiver(tmp_path, registry):  # noqa: F811
    iris = registry.add_model(IRIS)
    repo = make_repo(tmp_path, registry.url, edit_config=_no_gates)
    secret = secrets.token_urlsafe(24)
    secret_file = tmp_path / "secret"
    secret_file.write_text(secret + "\n")
    port, log = free_port(), tmp_path / "receiver.log"
    env = base_env(registry.url)
    with open(log, "ab") as out:
        proc = subprocess.Popen([*CLI, "webhook", "serve", "--host", "127.0.0.1", "--port", str(port),
                                 "--mode", "promote", "--repo-url", str(repo.remote), "--workers", "2",
                                 "--secret-file", str(secret_file), "--config", str(repo.root / "gitops.yaml")],
                                cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            assert proc.poll() is None, log.read_text()[-3000:]
            try:
                return requests.get(url + "/readyz", timeout=2).status_code == 200
            except requests.RequestException:
                return False

        _wait(ready, "the receiver to be ready")
        with RegistryClient(registry.url) as client:
            register_webhook(client, url=url + "/webhooks/mlflow", secret=secret, name=f"burst-{port}")
        time.sleep(1.3)  # the local MLflow caches its webhook list for 1 s
        yield repo, log, iris
    finally:
        with RegistryClient(registry.url) as client:
            for hook in client.list_webhooks():
                if hook.get("name") == f"burst-{port}":
                    client.delete_webhook(hook["webhook_id"])
        os.killpg(proc.pid, 15)
        proc.wait(timeout=30)
        assert not process_alive(proc.pid)


def test_burst_coalesces_per_pair_newest_wins_and_every_delivery_id_is_recorded(receiver, registry, tmp_path):  # noqa: F811
    repo, log, (iris_v1, iris_v2) = receiver
    before = repo.remote_head()
    tickets = tmp_path / "tickets"
    hook = ticket_hook(repo.remote, tickets, gates=1)
    accepted = lambda: [e for e in _events(log) if e.get("msg") == "delivery accepted"]  # noqa: E731
    started = lambda: [e for e in _events(log) if e.get("msg") == "job started"]  # noqa: E731

    registry.set_alias("champion", registry.v1)                   # wine@champion -> prod: job runs
    registry.set_alias("champion", iris_v2, model=IRIS)           # iris@champion -> prod: job runs
    _wait(lambda: (tickets / "inflight-1").exists() and len(started()) == 2,
          "both first jobs to start, one push held by the hook")
    for version in (registry.v2, registry.v1, registry.v2):       # wine: replaced twice, newest is v2
        registry.set_alias("champion", version)
    for _ in range(3):                                            # iris: the same version again
        registry.set_alias("champion", iris_v2, model=IRIS)
    _wait(lambda: len(accepted()) == 8, "MLflow to deliver all 8 alias moves")
    assert len(started()) == 2  # one job per pair runs; the rest wait
    (tickets / "gate-1").unlink()

    finished = lambda: [e for e in _events(log) if e.get("msg") in ("job committed", "job skipped")]  # noqa: E731
    _wait(lambda: len(finished()) == 4, "4 jobs (2 per pair) to finish", timeout=120)
    time.sleep(0.5)
    hook.unlink()
    events = _events(log)
    assert not [e for e in events if e.get("outcome") == "failed"], "a job failed"
    jobs = finished()
    assert len(jobs) == 4, [e.get("msg") for e in events]

    # Git ends where the registry is, with exactly one commit for the iris pair's burst of four.
    assert deployed(repo.remote, "wine-classifier", "prod")[0] == registry.v2
    assert deployed(repo.remote, IRIS, "prod")[0] == iris_v2
    shas = git(repo.remote, "rev-list", "--reverse", f"{before}..main").split()
    messages = {sha: git(repo.remote, "log", "-1", "--format=%B", sha) for sha in shas}
    per_model = [re.search(r"^Model: (.*)$", m, re.M).group(1) for m in messages.values()]
    # Which first job gets the push turn first is a race. If wine's does, it lands v1 and the waiting
    # job lands v2. If iris's does, wine's first job waits for the turn, moves to the new tip, decides
    # again there, resolves @champion afresh (v2 by then: the newest registry state wins) and lands v2,
    # and the waiting job finds v2 already promoted. Both end at v2 with every delivery id accounted for.
    assert per_model.count(IRIS) == 1 and per_model.count("wine-classifier") in (1, 2), per_model
    assert len(per_model) == len(shas), per_model
    assert git(repo.remote, "rev-list", "--merges", f"{before}..main").strip() == ""
    git(repo.remote, "fsck", "--strict", "--no-dangling")

    # One running + one waiting per pair: two jobs per pair, the second carrying the replaced ids.
    by_pair: dict[str, list[dict]] = {}
    for job in jobs:
        by_pair.setdefault(job["model"], []).append(job)
    assert sorted((m, len(j)) for m, j in by_pair.items()) == [(IRIS, 2), ("wine-classifier", 2)]
    for pair_jobs in by_pair.values():
        assert [len(j.get("superseded", [])) for j in pair_jobs] == [0, 2], pair_jobs
    # Every delivery id is accounted for: in a finished job's log line, and in the commit it made.
    ids = {e["delivery_id"] for e in accepted()}
    logged = {i for j in jobs for i in [j["delivery_id"], *j.get("superseded", [])]}
    assert logged == ids and len(ids) == 8
    for job in jobs:
        if job["msg"] == "job committed":
            message = messages[next(s for s in shas if s.startswith(job["commit"][:12]))]
            for delivery in [job["delivery_id"], *job.get("superseded", [])]:
                assert delivery in message, f"{delivery} missing from the commit that enacted it:\n{message}"
    # The two first jobs ran at once in prod; the second waited for the push turn, moved to the tip
    # the first had pushed, decided again there and landed at its first attempt: no refused push.
    firsts = [pair_jobs[0] for pair_jobs in by_pair.values()]
    attempts = sorted(int(re.search(r"after (\d+) attempt", j["detail"]).group(1)) for j in firsts)
    assert attempts == [1, 1], [j["detail"] for j in firsts]
    iris_jobs = by_pair[IRIS]
    assert [j["msg"] for j in iris_jobs] == ["job committed", "job skipped"]
    assert "already promoted" in iris_jobs[1].get("detail", "")
    if per_model.count("wine-classifier") == 1:  # wine's first job moved to v2 while it waited
        assert [j["msg"] for j in by_pair["wine-classifier"]] == ["job committed", "job skipped"]
        assert "already promoted" in by_pair["wine-classifier"][1].get("detail", "")
