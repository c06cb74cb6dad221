"""Event-driven promotion end to end on this machine, every part real.

A real ``mlflow server`` (webhooks to loopback allowed), the real receiver in promote mode as a
``gitops-tool webhook serve`` subprocess, a bare Git remote on disk and the CLI as subprocesses:

    alias set in MLflow -> signed delivery -> receiver -> fresh clone -> commit -> push to the remote

The tests form one story on one module-scoped loop and run in file order (each one starts from the
state the previous one left): register, two webhook promotions, metrics, receiver killed and
``reconcile`` catching up, then a held environment that the next webhook skips.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from gitops_tool.mlflow_local import V2_PARAMS, free_port, group_members, train_wine_version
from gitops_tool.registry import RegistryClient
from tests.mlflow_harness import WINE_MODEL, mlflow_server_for, process_alive, register_wine_versions

pytestmark = pytest.mark.slow

CLI = [sys.executable, "-m", "gitops_tool.cli.main"]
MODEL = WINE_MODEL
HOOK_PATH = "/webhooks/mlflow"
COMMIT_TIMEOUT = 60  # generous: 2 cores shared with other test runs


# -- small helpers -----------------------------------------------------------------------------


def git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def cli(*args: str, cwd: Path, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def head(origin: Path) -> str:
    return git("rev-parse", "main", cwd=origin)


def trailers(origin: Path, sha: str) -> dict[str, str]:
    text = git("log", "-1", "--format=%(trailers:only,unfold)", sha, cwd=origin)
    return dict(line.split(": ", 1) for line in text.splitlines() if ": " in line)


def wait_for_commit(origin: Path, before: str, timeout: float = COMMIT_TIMEOUT) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        now = head(origin)
        if now != before:
            return now
        time.sleep(0.05)
    raise AssertionError(f"no commit reached {origin} within {timeout:.0f}s")


def metric(base_url: str, name: str, **labels: str) -> float:
    text = requests.get(base_url + "/metrics", timeout=5).text
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                total += sample.value
    return total


def wait_for_metric(base_url: str, name: str, at_least: float, timeout: float = COMMIT_TIMEOUT,
                    **labels: str) -> float:
    deadline = time.monotonic() + timeout
    while True:
        value = metric(base_url, name, **labels)
        if value >= at_least or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


@dataclass
class Receiver:
    """`gitops-tool webhook serve --mode promote` in its own process group."""

    proc: subprocess.Popen
    url: str
    log_path: Path

    @property
    def hook_url(self) -> str:
        return self.url + HOOK_PATH

    def log_events(self) -> list[dict]:
        events = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                events.append(json.loads(line))
            except ValueError:
                pass
        return events

    def kill(self) -> None:
        """SIGKILL the whole group: no graceful shutdown, in-memory queue lost (the crash case)."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc.poll() is not None:
            return
        for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                self.proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue


@dataclass
class Loop:
    dir: Path
    mlflow_url: str
    env: dict[str, str]
    origin: Path
    checkout: Path
    secret_file: Path
    versions: dict[str, str]               # label -> registry version
    register_outputs: list[str] = field(default_factory=list)
    webhook_latencies: list[float] = field(default_factory=list)  # alias set -> commit seen, measured here
    receiver: Receiver | None = None
    receivers: list[Receiver] = field(default_factory=list)

    def start_receiver(self) -> Receiver:
        port = free_port()
        log_path = self.dir / f"receiver-{len(self.receivers) + 1}.log"
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [*CLI, "webhook", "serve", "--host", "127.0.0.1", "--port", str(port), "--mode", "promote",
                 "--repo-url", str(self.origin), "--secret-file", str(self.secret_file),
                 "--config", str(self.checkout / "gitops.yaml")],
                cwd=self.dir, env=self.env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        rec = Receiver(proc, f"http://127.0.0.1:{port}", log_path)
        self.receivers.append(rec)
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"receiver exited {proc.returncode}:\n{log_path.read_text()[-3000:]}"
            try:
                if requests.get(rec.url + "/readyz", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, "receiver not ready within 60s"
            time.sleep(0.1)
        self.receiver = rec
        return rec

    def register(self, url: str) -> subprocess.CompletedProcess:
        """The real `gitops-tool webhook register` (the secret comes from a file only)."""
        result = cli("webhook", "register", "--url", url, "--secret-file", str(self.secret_file),
                     "--tracking-uri", self.mlflow_url, cwd=self.dir, env=self.env, timeout=60)
        assert result.returncode == 0, result.stderr
        self.register_outputs.append(result.stdout)
        time.sleep(1.3)  # the local MLflow caches the webhook list for MLFLOW_WEBHOOK_CACHE_TTL=1 s
        return result

    def set_alias(self, label: str) -> None:
        with RegistryClient(self.mlflow_url) as client:
            client.set_alias(MODEL, "champion", self.versions[label])

    def pull(self) -> None:
        git("pull", "--quiet", "--ff-only", "origin", "main", cwd=self.checkout)

    def prod_version(self) -> str | None:
        """The version origin/main deploys to prod, from its newest commit with prod trailers."""
        for sha in git("log", "--format=%H", "main", cwd=self.origin).split():
            t = trailers(self.origin, sha)
            if t.get("Environment") == "prod" and t.get("Model-Version"):
                return t["Model-Version"]
        return None


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    with mlflow_server_for(tmp_path_factory, "mlflow-event-loop") as server:
        yield server


@pytest.fixture(scope="module")
def loop(mlflow_server, tmp_path_factory):
    wine = register_wine_versions(mlflow_server.url)
    # A third version as good as v2 (the no_worse_than_deployed gate lets it replace v2).
    v3 = train_wine_version(mlflow_server.url, MODEL, tags={"trained_by": "harness", "flavor": "v3"}, **V2_PARAMS)
    base = tmp_path_factory.mktemp("event-loop")
    env = dict(os.environ, MLFLOW_TRACKING_URI=mlflow_server.url)
    env.pop("GITOPS_TOOL_WEBHOOK_SECRET", None)
    origin, checkout = base / "origin.git", base / "gitops"
    git("init", "--quiet", "--bare", "-b", "main", str(origin), cwd=base)
    init = cli("init", str(checkout), "--repo-url", str(origin), "--prod-approval", "direct", cwd=base, env=env)
    assert init.returncode == 0, init.stderr
    config = checkout / "gitops.yaml"
    text = config.read_text()
    gate = "      require_previous_stage: {prod: staging}\n"
    assert gate in text and "http://127.0.0.1:5000" in text
    config.write_text(text.replace("http://127.0.0.1:5000", mlflow_server.url).replace(gate, ""))
    generated = cli("generate", cwd=checkout, env=env)
    assert generated.returncode == 0, generated.stderr
    for args in (("init", "--quiet", "-b", "main"), ("add", "-A"),
                 ("-c", "user.name=event loop test", "-c", "user.email=test@localhost", "commit", "--quiet",
                  "-m", "Platform generated by gitops-tool init"),
                 ("remote", "add", "origin", str(origin)), ("push", "--quiet", "-u", "origin", "main")):
        git(*args, cwd=checkout)
    secret_file = base / "webhook-secret"
    secret_file.write_text(secrets.token_urlsafe(32) + "\n")
    secret_file.chmod(0o600)
    state = Loop(dir=base, mlflow_url=mlflow_server.url, env=env, origin=origin, checkout=checkout,
                 secret_file=secret_file,
                 versions={"v1": wine.v1["version"], "v2": wine.v2["version"], "v3": v3["version"]})
    try:
        receiver = state.start_receiver()
        state.register(receiver.hook_url)  # first registration: "created" (checked below)
        yield state
    finally:
        for rec in state.receivers:
            rec.stop()
    for rec in state.receivers:
        assert not process_alive(rec.proc.pid)


# -- the story ---------------------------------------------------------------------------------


def test_register_cli_created_then_unchanged_and_names_server_settings(loop: Loop):
    first = loop.register_outputs[0]
    assert first.startswith("created: MLflow webhook 'gitops-tool'"), first
    assert loop.receiver.hook_url in first
    second = loop.register(loop.receiver.hook_url).stdout
    assert second.startswith("unchanged: MLflow webhook 'gitops-tool'"), second
    for out in (first, second):
        assert "The MLflow server needs these settings for this URL:" in out
        assert "MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https" in out
        assert "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true (127.0.0.1 is a loopback address" in out
        assert loop.secret_file.read_text().strip() not in out
    with RegistryClient(loop.mlflow_url) as client:
        hooks = [h for h in client.list_webhooks() if h.get("name") == "gitops-tool"]
    assert len(hooks) == 1 and hooks[0]["url"] == loop.receiver.hook_url

    # The secret is never a command-line argument: there is no such option on either command.
    for command in (["webhook", "register", "--url", loop.receiver.hook_url],
                    ["webhook", "serve", "--mode", "promote", "--repo-url", str(loop.origin)]):
        refused = cli(*command, "--secret", "hunter2", cwd=loop.dir, env=loop.env, timeout=60)
        assert refused.returncode == 2 and "No such option '--secret'" in refused.stderr, refused.stderr
        helptext = cli(*command[:2], "--help", cwd=loop.dir, env=loop.env, timeout=60).stdout
        options = {word.rstrip(",") for word in helptext.split() if word.startswith("--")}
        assert "--secret-file" in options and not {o for o in options if o.startswith("--secret")} - {"--secret-file"}


def test_alias_moves_become_webhook_commits_on_the_remote(loop: Loop):
    shas = []
    for label in ("v1", "v2"):
        before = head(loop.origin)
        started = time.time()
        loop.set_alias(label)
        sha = wait_for_commit(loop.origin, before)
        loop.webhook_latencies.append(time.time() - started)
        shas.append(sha)
        t = trailers(loop.origin, sha)
        assert t["Trigger"] == "webhook" and t["Environment"] == "prod" and t["Alias"] == "@champion", t
        assert t["Model-Version"] == loop.versions[label], t
        uuid.UUID(t["Delivery-Id"])  # MLflow's own delivery id, carried into the commit
        assert git("rev-list", "--count", f"{before}..{sha}", cwd=loop.origin) == "1"
        # The receiver logged this very delivery id and commit.
        deadline = time.monotonic() + 10
        while not any(e.get("msg") == "job committed" and e.get("commit") == sha
                      for e in loop.receiver.log_events()):
            assert time.monotonic() < deadline, loop.receiver.log_path.read_text()[-3000:]
            time.sleep(0.05)
        done = next(e for e in loop.receiver.log_events() if e.get("commit") == sha)
        assert done["delivery_id"] == t["Delivery-Id"] and done["version"] == loop.versions[label]
    subjects = git("log", "-2", "--format=%s", "main", cwd=loop.origin).splitlines()
    assert subjects == [
        f"promote(prod): {MODEL} {loop.versions['v1']} -> {loop.versions['v2']} (@champion)",
        f"promote(prod): {MODEL} none -> {loop.versions['v1']} (@champion)",
    ]
    changed = git("show", "--name-only", "--format=", shas[-1], cwd=loop.origin).splitlines()
    assert changed and all(p.startswith("environments/prod/release/") for p in changed), changed


def test_receiver_metrics_after_the_promotions(loop: Loop):
    url = loop.receiver.url
    assert wait_for_metric(url, "gitops_promotions_total", 2, env="prod", result="committed") >= 2
    assert metric(url, "gitops_webhook_deliveries_total", outcome="accepted") >= 2
    assert metric(url, "gitops_alias_to_commit_seconds_count") >= 2
    observed = metric(url, "gitops_alias_to_commit_seconds_sum")
    # The histogram times from MLflow's send to the job's end; MLflow sends after our set-alias call
    # starts, and the job ends moments after the push we saw. The whole-second X-MLflow-Timestamp
    # header alone would add up to 1 s per observation.
    measured = sum(loop.webhook_latencies)
    assert 0 < observed <= measured + 0.25 * len(loop.webhook_latencies), (observed, loop.webhook_latencies)
    assert metric(url, "gitops_webhook_deliveries_total", outcome="unauthorized") == 0
    assert metric(url, "gitops_promotions_total", result="failed") == 0


def test_receiver_killed_then_reconcile_brings_git_up_to_date(loop: Loop):
    assert loop.prod_version() == loop.versions["v2"]
    dead = loop.receiver
    dead.kill()
    assert not process_alive(dead.proc.pid) and group_members(dead.proc.pid) == []
    before = head(loop.origin)
    loop.set_alias("v3")  # MLflow's delivery goes nowhere: nobody listens
    time.sleep(2.0)
    assert head(loop.origin) == before

    loop.pull()
    first = cli("reconcile", cwd=loop.checkout, env=loop.env)
    assert first.returncode == 0, first.stdout + first.stderr
    champion = next(line for line in first.stdout.splitlines() if f"{MODEL}@champion" in line)
    assert champion.startswith("promoted"), first.stdout
    sha = head(loop.origin)
    assert sha != before and git("rev-list", "--count", f"{before}..{sha}", cwd=loop.origin) == "1"
    t = trailers(loop.origin, sha)
    assert t["Trigger"] == "reconcile" and t["Model-Version"] == loop.versions["v3"], t
    assert "Delivery-Id" not in t
    assert git("rev-parse", "HEAD", cwd=loop.checkout) == sha  # committed in the checkout, pushed

    second = cli("reconcile", cwd=loop.checkout, env=loop.env)
    assert second.returncode == 0, second.stdout + second.stderr
    champion = next(line for line in second.stdout.splitlines() if f"{MODEL}@champion" in line)
    assert champion.startswith("in-sync"), second.stdout
    assert "promoted" not in second.stdout and head(loop.origin) == sha
    as_json = json.loads(cli("reconcile", "--output", "json", cwd=loop.checkout, env=loop.env).stdout)
    assert as_json["in_sync"] is True and as_json["failed"] == 0


def test_held_environment_makes_the_next_webhook_a_skip(loop: Loop):
    assert loop.prod_version() == loop.versions["v3"]
    receiver = loop.start_receiver()  # new port: late MLflow retries for the dead one cannot land here
    updated = loop.register(receiver.hook_url).stdout
    assert updated.startswith("updated: MLflow webhook 'gitops-tool'"), updated

    loop.pull()
    rolled = cli("rollback", MODEL, "--env", "prod", cwd=loop.checkout, env=loop.env)
    assert rolled.returncode == 0, rolled.stdout + rolled.stderr
    assert "hold placed" in rolled.stdout
    held_at = head(loop.origin)
    assert git("rev-parse", "HEAD", cwd=loop.checkout) == held_at  # the rollback is pushed
    assert trailers(loop.origin, held_at)["Trigger"] == "rollback"
    assert loop.prod_version() == loop.versions["v2"]

    loop.set_alias("v1")
    skipped = wait_for_metric(receiver.url, "gitops_promotions_total", 1, env="prod", result="skipped")
    assert skipped == 1, receiver.log_path.read_text()[-3000:]
    assert metric(receiver.url, "gitops_webhook_deliveries_total", outcome="accepted") == 1
    assert metric(receiver.url, "gitops_promotions_total", result="committed") == 0
    assert metric(receiver.url, "gitops_promotions_total", result="failed") == 0
    job = next(e for e in receiver.log_events() if e.get("msg") == "job skipped")
    assert job["detail"].startswith("held: rollback from") and job["version"] == loop.versions["v1"], job
    assert head(loop.origin) == held_at


def test_one_registry_feeds_three_serving_environments(loop: Loop):
    """One MLflow registry of record, three serving environments: each alias's webhook commits into the
    environment gitops.yaml maps it to, with that one registry's version number, and reconcile agrees."""
    receiver = loop.receiver
    moves = [("candidate", "dev", "v3"), ("challenger", "staging", "v1")]
    for alias, env, label in moves:
        before = head(loop.origin)
        with RegistryClient(loop.mlflow_url) as client:
            client.set_alias(MODEL, alias, loop.versions[label])
        sha = wait_for_commit(loop.origin, before)
        t = trailers(loop.origin, sha)
        assert (t["Environment"], t["Alias"], t["Model-Version"], t["Trigger"]) == \
            (env, f"@{alias}", loop.versions[label], "webhook"), t
        changed = git("show", "--name-only", "--format=", sha, cwd=loop.origin).splitlines()
        assert changed and all(p.startswith(f"environments/{env}/release/") for p in changed), changed
    with RegistryClient(loop.mlflow_url) as client:
        registry = client.get_model_aliases(MODEL)
    loop.pull()
    status = json.loads(cli("status", "-o", "json", cwd=loop.checkout, env=loop.env).stdout)
    rows = {r["env"]: r for r in status["rows"]}
    assert rows["dev"]["git_version"] == registry["candidate"] == loop.versions["v3"]
    assert rows["staging"]["git_version"] == registry["challenger"] == loop.versions["v1"]
    assert rows["prod"]["hold"] and rows["prod"]["cluster"] == "prod"
    # The only receiver is the registry of record's: every commit above came from it.
    assert metric(receiver.url, "gitops_promotions_total", result="committed") == 2
