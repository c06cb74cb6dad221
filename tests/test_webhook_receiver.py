"""The MLflow webhook receiver over real HTTP: a uvicorn server on a loopback port per test.

Handlers are real but simple (they record, sleep or fail on purpose) so queueing, retries and
per-environment serialisation are measured without the promotion engine. GitHub is the one
part that cannot run here: dispatch mode talks to a local RecordingServer standing in for it.
The registration test drives a real ``mlflow server``, which signs and sends real deliveries.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from importlib import resources
from pathlib import Path
from typing import Callable

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from gitops_tool.config import load_config_text
from gitops_tool.errors import GitopsError
from gitops_tool.webhook.app import WEBHOOK_PATH, WebhookApp, create_app
from gitops_tool.webhook.handlers import build_handler
from gitops_tool.webhook.jobs import Job, Outcome
from gitops_tool.webhook.settings import SECRET_ENV, ReceiverSettings, load_secrets
from gitops_tool.webhook.server import running
from gitops_tool.webhook.signature import delivery_headers, sign
from tests.mlflow_harness import RecordingServer, mlflow_server_for, register_wine_versions

SECRET = "s3cret-current"
OLD_SECRET = "s3cret-rotated-out"
MODEL = "wine-classifier"  # template: candidate -> dev, challenger -> staging, champion -> prod


def template_config():
    text = resources.files("gitops_tool.templates").joinpath("gitops.yaml").read_text()
    return load_config_text(text)


def settings(**overrides) -> ReceiverSettings:
    base = ReceiverSettings(secrets=(SECRET, OLD_SECRET), config_path=Path("gitops.yaml"),
                            host="127.0.0.1", port=0, backoff=0.05, max_backoff=0.2)
    return replace(base, **overrides)


@contextlib.contextmanager
def receiver(handler: Callable[[Job], Outcome], **overrides) -> Iterator[tuple[str, WebhookApp]]:
    app = create_app(settings(**overrides), handler, template_config())
    with running(app) as url:
        yield url, app


class Recorder:
    """A handler that records each job (with start/end times) and can sleep, block or fail."""

    def __init__(self, sleep: float = 0.0, fail: list[GitopsError] | None = None,
                 gate: threading.Event | None = None, result: str = "committed"):
        self.jobs: list[Job] = []
        self.spans: list[tuple[str, float, float]] = []
        self.sleep, self.fail, self.gate, self.result = sleep, list(fail or []), gate, result
        self.lock = threading.Lock()
        self.calls = 0

    def __call__(self, job: Job) -> Outcome:
        start = time.monotonic()
        with self.lock:
            self.calls += 1
            error = self.fail.pop(0) if self.fail else None
        if self.gate is not None:
            self.gate.wait(10)
        time.sleep(self.sleep)
        if error is not None:
            raise error
        with self.lock:
            self.jobs.append(replace(job))
            self.spans.append((job.env, start, time.monotonic()))
        return Outcome(self.result, "recorded", commit="abc123" if self.result == "committed" else None)

    def wait_for(self, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.jobs) < count:
            assert time.monotonic() < deadline, f"handler ran {len(self.jobs)} jobs, wanted {count}"
            time.sleep(0.01)


def alias_body(alias: str = "champion", version: str = "3", name: str = MODEL,
               action: str = "created") -> bytes:
    data = {"name": name, "alias": alias} | ({"version": version} if action == "created" else {})
    return json.dumps({"entity": "model_version_alias", "action": action,
                       "timestamp": "2026-11-01T10:00:00+00:00", "data": data}).encode()


def post(url: str, body: bytes, secret: str = SECRET, **header_args) -> requests.Response:
    headers = delivery_headers(secret, body, **header_args)
    return requests.post(url + WEBHOOK_PATH, data=body, headers=headers, timeout=10)


def metric(url: str, name: str, **labels: str) -> float:
    text = requests.get(url + "/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


# -- authentication, window, replay, size, shape -------------------------------------------


def test_valid_delivery_is_accepted_and_runs_the_handler():
    rec = Recorder()
    with receiver(rec) as (url, _):
        started = time.perf_counter()
        resp = post(url, alias_body("champion", "7"))
        elapsed = time.perf_counter() - started
        assert resp.status_code == 202, resp.text
        assert resp.json() == {"status": "accepted", "delivery_id": resp.json()["delivery_id"],
                               "model": MODEL, "alias": "champion", "version": "7", "environment": "prod"}
        rec.wait_for(1)
        job = rec.jobs[0]
        assert (job.model, job.alias, job.version, job.env) == (MODEL, "champion", "7", "prod")
        assert elapsed < 0.5  # the request path does no work beyond verify + enqueue
        assert metric(url, "gitops_promotions_total", env="prod", result="committed") == 1
        assert metric(url, "gitops_alias_to_commit_seconds_count") == 1


def test_rotated_out_secret_still_verifies():
    rec = Recorder()
    with receiver(rec) as (url, _):
        assert post(url, alias_body(), secret=OLD_SECRET).status_code == 202
        rec.wait_for(1)


def test_forged_or_missing_signature_is_401_and_handler_not_run():
    rec = Recorder()
    with receiver(rec) as (url, _):
        body = alias_body()
        assert post(url, body, secret="wrong").status_code == 401
        headers = delivery_headers(SECRET, body)
        tampered = body.replace(b'"3"', b'"4"')
        assert requests.post(url + WEBHOOK_PATH, data=tampered, headers=headers).status_code == 401
        no_prefix = dict(headers, **{"X-MLflow-Signature": headers["X-MLflow-Signature"][3:]})
        assert requests.post(url + WEBHOOK_PATH, data=body, headers=no_prefix).status_code == 401
        del headers["X-MLflow-Signature"]
        resp = requests.post(url + WEBHOOK_PATH, data=body, headers=headers)
        assert resp.status_code == 401 and resp.json()["status"] == "rejected"
        assert metric(url, "gitops_webhook_deliveries_total", outcome="unauthorized") == 4
        time.sleep(0.1)
        assert rec.calls == 0


def test_stale_and_future_timestamps_are_400():
    """Signed correctly but outside the window: 400 (the signature is fine, the request is not)."""
    rec = Recorder()
    with receiver(rec, timestamp_window=300) as (url, _):
        now = int(time.time())
        # A minute past the window on either side: a loaded machine may take seconds between these posts.
        stale = post(url, alias_body(), timestamp=now - 360)
        future = post(url, alias_body(), timestamp=now + 360)
        assert (stale.status_code, future.status_code) == (400, 400)
        assert "old" in stale.json()["reason"] and "future" in future.json()["reason"]
        assert post(url, alias_body(), timestamp=now - 250).status_code == 202
        assert metric(url, "gitops_webhook_deliveries_total", outcome="stale") == 2


def test_replayed_delivery_id_is_409_and_runs_once():
    rec = Recorder()
    with receiver(rec) as (url, _):
        body = alias_body()
        headers = delivery_headers(SECRET, body)
        first = requests.post(url + WEBHOOK_PATH, data=body, headers=headers)
        again = requests.post(url + WEBHOOK_PATH, data=body, headers=headers)
        assert (first.status_code, again.status_code) == (202, 409)
        rec.wait_for(1)
        time.sleep(0.2)
        assert rec.calls == 1
        assert metric(url, "gitops_webhook_deliveries_total", outcome="replayed") == 1


def test_oversized_body_is_413_by_length_and_while_reading():
    rec = Recorder()
    with receiver(rec) as (url, _):
        big = b"x" * (1024 * 1024 + 1)
        resp = requests.post(url + WEBHOOK_PATH, data=big, headers=delivery_headers(SECRET, big))
        assert resp.status_code == 413
        # Chunked transfer has no Content-Length: the cap is enforced while reading.
        chunks = (b"y" * 65536 for _ in range(20))
        resp = requests.post(url + WEBHOOK_PATH, data=chunks, headers=delivery_headers(SECRET, b""))
        assert resp.status_code == 413
        assert metric(url, "gitops_webhook_deliveries_total", outcome="too_large") == 2
        assert requests.get(url + "/healthz").status_code == 200
        assert rec.calls == 0


@pytest.mark.parametrize("body, why", [
    (b"not json {", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (json.dumps({"entity": "model_version_alias", "action": "created"}).encode(), "object 'data'"),
    (json.dumps({"entity": "model_version_alias", "action": "created",
                 "data": {"name": MODEL, "alias": "champion"}}).encode(), "data.version"),
    (json.dumps({"entity": "model_version_alias", "action": "created",
                 "data": {"name": MODEL, "alias": ["champion"], "version": "1"}}).encode(), "data.alias"),
])
def test_malformed_bodies_are_400(body: bytes, why: str):
    rec = Recorder()
    with receiver(rec) as (url, _):
        resp = post(url, body)
        assert resp.status_code == 400 and why in resp.json()["reason"], resp.text
        assert metric(url, "gitops_webhook_deliveries_total", outcome="malformed") == 1


def test_missing_delivery_headers_are_400():
    with receiver(Recorder()) as (url, _):
        body = alias_body()
        for header in ("X-MLflow-Delivery-Id", "X-MLflow-Timestamp"):
            headers = delivery_headers(SECRET, body)
            del headers[header]
            assert requests.post(url + WEBHOOK_PATH, data=body, headers=headers).status_code == 400
        bad_ts = delivery_headers(SECRET, body)
        bad_ts["X-MLflow-Timestamp"] = "yesterday"
        assert requests.post(url + WEBHOOK_PATH, data=body, headers=bad_ts).status_code == 400
        assert requests.get(url + WEBHOOK_PATH).status_code == 405


@pytest.mark.parametrize("body, reason", [
    (alias_body("champion", action="deleted"), "model_version_alias.deleted"),
    (alias_body("shadow"), "alias 'shadow'"),
    (alias_body("champion", name="other-model"), "model 'other-model'"),
    (json.dumps({"entity": "model_version", "action": "created", "data": {"name": MODEL}}).encode(),
     "model_version.created"),
])
def test_events_that_promote_nothing_are_200_ignored(body: bytes, reason: str):
    rec = Recorder()
    with receiver(rec) as (url, _):
        resp = post(url, body)
        assert resp.status_code == 200 and resp.json()["status"] == "ignored"
        assert reason in resp.json()["reason"]
        assert metric(url, "gitops_webhook_deliveries_total", outcome="ignored") == 1
        time.sleep(0.1)
        assert rec.calls == 0


def test_metrics_count_each_outcome():
    rec = Recorder()
    with receiver(rec) as (url, _):
        body = alias_body()
        headers = delivery_headers(SECRET, body)
        requests.post(url + WEBHOOK_PATH, data=body, headers=headers)           # accepted
        requests.post(url + WEBHOOK_PATH, data=body, headers=headers)           # replayed
        post(url, body, secret="nope")                                          # unauthorized
        post(url, body, timestamp=1)                                            # stale
        post(url, b"{")                                                         # malformed
        post(url, alias_body("shadow"))                                         # ignored
        post(url, b"z" * (2 * 1024 * 1024))                                     # too_large
        rec.wait_for(1)
        counts = {o: metric(url, "gitops_webhook_deliveries_total", outcome=o)
                  for o in ("accepted", "replayed", "unauthorized", "stale", "malformed", "ignored",
                            "too_large", "queue_full")}
        assert counts == {"accepted": 1, "replayed": 1, "unauthorized": 1, "stale": 1, "malformed": 1,
                          "ignored": 1, "too_large": 1, "queue_full": 0}
        assert metric(url, "gitops_webhook_queue_depth") == 0


# -- queueing, serialisation, retries ------------------------------------------------------


def test_same_env_jobs_never_overlap_and_different_envs_do():
    rec = Recorder(sleep=0.3)
    with receiver(rec, workers=2) as (url, _):
        for alias in ("candidate", "candidate", "champion", "champion"):  # dev, dev, prod, prod
            assert post(url, alias_body(alias)).status_code == 202
        rec.wait_for(4)
    by_env: dict[str, list[tuple[float, float]]] = {}
    for env, start, end in rec.spans:
        by_env.setdefault(env, []).append((start, end))
    for env, spans in by_env.items():
        spans.sort()
        assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), f"{env} jobs overlapped: {spans}"
    dev, prod = by_env["dev"], by_env["prod"]
    overlap = any(d[0] < p[1] and p[0] < d[1] for d in dev for p in prod)
    assert overlap, f"dev and prod never ran together: {rec.spans}"
    total = max(e for _, _, e in rec.spans) - min(s for _, s, _ in rec.spans)
    assert total < 4 * 0.3  # two envs in parallel: ~0.6 s, serial would be >= 1.2 s


def test_retryable_failure_is_retried_then_succeeds():
    rec = Recorder(fail=[GitopsError("push rejected", retryable=True),
                         GitopsError("registry 503", retryable=True)])
    with receiver(rec, max_attempts=5) as (url, _):
        assert post(url, alias_body("challenger")).status_code == 202
        rec.wait_for(1)
        assert rec.calls == 3 and rec.jobs[0].attempt == 3
        assert metric(url, "gitops_promotions_total", env="staging", result="retried") == 2
        assert metric(url, "gitops_promotions_total", env="staging", result="committed") == 1


def test_non_retryable_failure_and_exhausted_retries_stop():
    rec = Recorder(fail=[GitopsError("gate failed: accuracy"),
                         *[GitopsError("flaky", retryable=True)] * 3])
    with receiver(rec, max_attempts=3) as (url, _):
        assert post(url, alias_body("candidate")).status_code == 202
        assert post(url, alias_body("champion")).status_code == 202
        deadline = time.monotonic() + 5
        while metric(url, "gitops_promotions_total", result="failed", env="prod") + \
                metric(url, "gitops_promotions_total", result="failed", env="dev") < 2:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        time.sleep(0.3)
        assert rec.calls == 4 and rec.jobs == []  # 1 (not retryable) + 3 (max_attempts)


def test_full_queue_is_503_and_mlflow_retry_with_same_id_gets_in():
    gate = threading.Event()
    rec = Recorder(gate=gate)
    with receiver(rec, workers=1, queue_size=1) as (url, _):
        assert post(url, alias_body("candidate")).status_code == 202   # running (blocked on gate)
        deadline = time.monotonic() + 5
        while rec.calls == 0:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert post(url, alias_body("champion")).status_code == 202    # waits in the queue
        body = alias_body("challenger")
        headers = delivery_headers(SECRET, body)
        full = requests.post(url + WEBHOOK_PATH, data=body, headers=headers)
        assert full.status_code == 503 and full.headers["retry-after"] == "5"
        assert requests.get(url + "/readyz").status_code == 503
        assert metric(url, "gitops_webhook_queue_depth") == 1
        gate.set()
        rec.wait_for(2)
        again = requests.post(url + WEBHOOK_PATH, data=body, headers=headers)  # same id, as MLflow retries
        assert again.status_code == 202, again.text
        rec.wait_for(3)
        assert metric(url, "gitops_webhook_deliveries_total", outcome="queue_full") == 1
        assert requests.get(url + "/readyz").json()["status"] == "ready"


def test_healthz_and_readyz():
    with receiver(Recorder()) as (url, app):
        assert requests.get(url + "/healthz").json() == {"status": "ok"}
        ready = requests.get(url + "/readyz")
        assert ready.status_code == 200 and ready.json()["problems"] == []
        assert requests.get(url + "/nope").status_code == 404
    assert not app.pool.alive()  # the lifespan shutdown stopped the workers


# -- dispatch mode (GitHub stand-in), settings, serve() -------------------------------------


def test_dispatch_mode_sends_repository_dispatch_to_github_standin():
    """GitHub cannot run here: a local RecordingServer stands in for api.github.com.

    The first call answers 502 to show a retryable GitHub error is retried.
    """
    answers = [(502, {}, b"bad gateway"), (204, {}, b"")]
    with RecordingServer(lambda rec: answers.pop(0) if answers else (204, {}, b"")) as github:
        s = settings(mode="dispatch", github_repo="acme/mlflow-gitops", github_api_url=github.url,
                     github_token="ghp_test_token")
        s.check()
        app = create_app(s, build_handler(s), template_config())
        with running(app) as url:
            resp = post(url, alias_body("champion", "5"), delivery_id="d-123")
            assert resp.status_code == 202
            deadline = time.monotonic() + 5
            while metric(url, "gitops_promotions_total", env="prod", result="dispatched") < 1:
                assert time.monotonic() < deadline, github.requests
                time.sleep(0.05)
        assert len(github.requests) == 2
        sent = github.requests[-1]
        assert (sent.method, sent.path) == ("POST", "/repos/acme/mlflow-gitops/dispatches")
        assert sent.headers["Authorization"] == "Bearer ghp_test_token"
        assert sent.headers["Accept"] == "application/vnd.github+json"
        assert json.loads(sent.body) == {"event_type": "mlflow-model-alias", "client_payload": {
            "model": MODEL, "alias": "champion", "version": "5", "delivery_id": "d-123",
            "environment": "prod"}}


def test_settings_refuse_to_run_without_secret_or_mode_needs(tmp_path: Path, monkeypatch):
    with pytest.raises(GitopsError, match="no shared secret"):
        load_secrets(None, environ={})
    secret_file = tmp_path / "secret"
    secret_file.write_text("new-one\n\nold-one\n")
    assert load_secrets(secret_file, environ={SECRET_ENV: "ignored"}) == ("new-one", "old-one")
    assert load_secrets(None, environ={SECRET_ENV: " from-env "}) == ("from-env",)
    with pytest.raises(GitopsError, match="no shared secret"):
        settings(secrets=()).check_common()
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    with pytest.raises(GitopsError, match="GITHUB_TOKEN"):
        settings(mode="dispatch", github_repo="a/b").check()
    with pytest.raises(GitopsError, match="--repo-url"):
        settings(mode="promote").check()


SERVE_SCRIPT = """
import sys
from pathlib import Path
from gitops_tool.webhook.server import serve
from gitops_tool.webhook.settings import ReceiverSettings, load_secrets
serve(ReceiverSettings(secrets=load_secrets(Path(sys.argv[1])), config_path=Path(sys.argv[2]),
      host="127.0.0.1", port=int(sys.argv[3]), mode="dispatch", github_repo="acme/gitops",
      github_api_url=sys.argv[4], shutdown_timeout=10))
"""


def test_serve_process_finishes_in_flight_job_on_sigterm(tmp_path: Path):
    """The real entry point in its own process: JSON logs, then SIGTERM while a job is in flight."""
    from gitops_tool.mlflow_local import free_port

    (tmp_path / "secret").write_text(SECRET + "\n")
    (tmp_path / "gitops.yaml").write_text(
        resources.files("gitops_tool.templates").joinpath("gitops.yaml").read_text())
    in_flight = threading.Event()

    def slow_github(_rec):
        in_flight.set()
        time.sleep(1.5)
        return 204, {}, b""

    with RecordingServer(slow_github) as github:
        port = free_port()
        env = dict(os.environ, GITHUB_TOKEN="ghp_x", PYTHONUNBUFFERED="1")
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE_SCRIPT, str(tmp_path / "secret"), str(tmp_path / "gitops.yaml"),
             str(port), github.url], env=env, stderr=subprocess.PIPE, text=True)
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 20
            while True:
                with contextlib.suppress(requests.ConnectionError):
                    if requests.get(url + "/readyz", timeout=1).status_code == 200:
                        break
                assert proc.poll() is None and time.monotonic() < deadline
                time.sleep(0.05)
            assert post(url, alias_body("champion", "9")).status_code == 202
            assert in_flight.wait(5)
            stopped = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            _, stderr = proc.communicate(timeout=20)
            took = time.monotonic() - stopped
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 0, stderr
    lines = [json.loads(line) for line in stderr.splitlines() if line.startswith("{")]
    assert all({"ts", "level", "msg"} <= set(line) for line in lines)
    accepted = [x for x in lines if x.get("outcome") == "accepted"]
    done = [x for x in lines if x.get("outcome") == "dispatched"]
    assert accepted and accepted[0]["env"] == "prod" and accepted[0]["version"] == "9"
    assert done and done[0]["delivery_id"] == accepted[0]["delivery_id"], stderr  # in-flight finished
    assert 1.0 < took < 10, took  # waited for the 1.5 s in-flight job, bounded
    assert len(github.requests) == 1


# -- registration and real deliveries from a real MLflow server ----------------------------


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory):
    with mlflow_server_for(tmp_path_factory, "mlflow-webhook") as server:
        yield server


@pytest.mark.slow
def test_register_webhook_idempotent_and_real_alias_delivery_is_accepted(mlflow_server):
    from gitops_tool.registry.client import RegistryClient
    from gitops_tool.webhook.register import register_webhook, server_settings_needed

    wine = register_wine_versions(mlflow_server.url)
    rec = Recorder()
    with receiver(rec) as (url, _), RegistryClient(mlflow_server.url) as client:
        hook_url = url + WEBHOOK_PATH
        assert any("ALLOW_PRIVATE_IPS" in line for line in server_settings_needed(hook_url))
        status, hook = register_webhook(client, url=hook_url, secret=SECRET)
        assert status == "created" and hook["url"] == hook_url
        assert register_webhook(client, url=hook_url, secret=SECRET)[0] == "unchanged"
        assert register_webhook(client, url=hook_url + "x", secret=SECRET)[0] == "updated"
        status, again = register_webhook(client, url=hook_url, secret=SECRET)
        assert status == "updated" and again["webhook_id"] == hook["webhook_id"]
        assert register_webhook(client, url=hook_url, secret=SECRET, update_secret=True)[0] == "updated"
        assert [h["name"] for h in client.list_webhooks()].count("gitops-tool") == 1
        hook_events = {(e["entity"], e["action"]) for e in again["events"]}
        assert hook_events == {("MODEL_VERSION_ALIAS", "CREATED"), ("MODEL_VERSION_ALIAS", "DELETED")}

        time.sleep(1.2)  # MLFLOW_WEBHOOK_CACHE_TTL=1 on the local server
        moved = time.time()
        client.set_alias(wine.name, "champion", wine.v2["version"])
        rec.wait_for(1, timeout=20)
        latency = time.time() - moved
        job = rec.jobs[0]
        assert (job.model, job.alias, job.version, job.env) == (wine.name, "champion",
                                                                 wine.v2["version"], "prod")
        uuid.UUID(job.delivery_id)  # MLflow's own delivery id
        client.delete_alias(wine.name, "champion")  # alias.deleted: delivered, ignored
        deadline = time.monotonic() + 20
        while metric(url, "gitops_webhook_deliveries_total", outcome="ignored") < 1:
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert metric(url, "gitops_webhook_deliveries_total", outcome="unauthorized") == 0
    print(f"alias set -> handler done: {latency:.3f} s")


def test_sign_matches_mlflows_own_signature():
    """Our verifier against MLflow's signer (imported only here)."""
    from mlflow.webhooks.delivery import _generate_hmac_signature

    body = alias_body().decode()
    assert sign(SECRET, "id-1", "1700000000", body.encode()) == \
        _generate_hmac_signature(SECRET, "id-1", "1700000000", body)
