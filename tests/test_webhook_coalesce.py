"""The receiver's queue coalesces per (model, environment), over real HTTP (a uvicorn server per test).

Handlers are simple recorders that can block on an event or fail on purpose, as in
test_webhook_receiver.py, so the queue's semantics are checked without the engine: one job runs and
one waits per pair, the waiting one carries the newest event and every replaced delivery id, and
replacing never needs room in a full queue. The end-to-end counterpart (real MLflow, real engine,
real bare remote) is tests/test_webhook_burst.py.
"""

from __future__ import annotations

import threading
import time
import uuid

from gitops_tool.config import load_config_text
from gitops_tool.errors import GitopsError
from gitops_tool.webhook.app import create_app
from gitops_tool.webhook.jobs import Job, PairScheduler
from gitops_tool.webhook.server import running
from tests.promotion_fixtures import add_model_to_config
from tests.test_webhook_receiver import Recorder, alias_body, metric, post, settings, template_config


def _wait(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def _post_id(url: str, body: bytes) -> str:
    delivery_id = f"d-{uuid.uuid4().hex[:10]}"
    resp = post(url, body, delivery_id=delivery_id)
    assert resp.status_code == 202, resp.text
    return delivery_id


def test_newest_delivery_replaces_the_waiting_one_and_keeps_every_id():
    gate = threading.Event()
    rec = Recorder(gate=gate)
    app = create_app(settings(workers=2), rec, template_config())
    with running(app) as url:
        first = _post_id(url, alias_body("champion", "1"))
        _wait(lambda: rec.calls == 1, what="the first job to start")
        later = [_post_id(url, alias_body("champion", v)) for v in ("2", "3", "4")]
        time.sleep(0.2)
        assert rec.calls == 1, "a second job of the same pair started while the first ran"
        assert metric(url, "gitops_webhook_queue_depth") == 1  # one waiting job, not three
        assert metric(url, "gitops_webhook_coalesced_total") == 2
        gate.set()
        rec.wait_for(2)
        time.sleep(0.2)
    assert rec.calls == 2
    ran = [(j.delivery_id, j.version, j.superseded) for j in rec.jobs]
    assert ran == [(first, "1", []), (later[2], "4", later[:2])]


def test_one_running_and_one_waiting_per_pair_and_pairs_run_together():
    gate = threading.Event()
    rec = Recorder(gate=gate, sleep=0.05)
    app = create_app(settings(workers=4), rec, template_config())
    with running(app) as url:
        for _ in range(3):
            for alias in ("candidate", "champion"):  # two pairs: (wine, dev), (wine, prod)
                _post_id(url, alias_body(alias))
        _wait(lambda: rec.calls == 2, what="one job per pair to start")
        time.sleep(0.2)
        assert rec.calls == 2 and app.scheduler.running() == 2
        assert metric(url, "gitops_webhook_queue_depth") == 2
        gate.set()
        rec.wait_for(4)
        time.sleep(0.2)
    assert rec.calls == 4
    by_env: dict[str, list[tuple[float, float]]] = {}
    for env, start, end in rec.spans:
        by_env.setdefault(env, []).append((start, end))
    for spans in by_env.values():
        spans.sort()
        assert len(spans) == 2 and spans[0][1] <= spans[1][0], f"jobs of one pair overlapped: {spans}"
    assert sorted(len(j.superseded) for j in rec.jobs) == [0, 0, 1, 1]


def test_two_models_in_one_environment_run_at_the_same_time():
    """Per-pair, not per-environment: the engine's push retry (re-deciding on the new tip) keeps
    concurrent jobs on one environment correct; tests/test_webhook_burst.py proves it on a remote."""
    config = load_config_text(add_model_to_config(_template_text(), "iris-classifier"))
    barrier = threading.Barrier(2, timeout=5)
    seen: list[str] = []

    def handler(job: Job):
        from gitops_tool.webhook.jobs import Outcome

        seen.append(job.model)
        barrier.wait()  # both jobs must be running at once, or this times out
        return Outcome("committed", "recorded", commit="abc")

    app = create_app(settings(workers=2), handler, config)
    with running(app) as url:
        _post_id(url, alias_body("champion", "1", name="wine-classifier"))
        _post_id(url, alias_body("champion", "1", name="iris-classifier"))
        _wait(lambda: metric(url, "gitops_promotions_total", env="prod", result="committed") == 2,
              what="both prod jobs to commit")
    assert sorted(seen) == ["iris-classifier", "wine-classifier"]


def _template_text() -> str:
    from importlib import resources

    return resources.files("gitops_tool.templates").joinpath("gitops.yaml").read_text()


def test_a_retry_is_left_to_the_newer_waiting_job_which_carries_its_id():
    gate = threading.Event()
    rec = Recorder(gate=gate, fail=[GitopsError("push rejected", retryable=True)])
    app = create_app(settings(workers=1, backoff=0.05), rec, template_config())
    with running(app) as url:
        failing = _post_id(url, alias_body("challenger", "5"))
        _wait(lambda: rec.calls == 1, what="the first job to start")
        newer = _post_id(url, alias_body("challenger", "6"))
        gate.set()
        rec.wait_for(1)
        time.sleep(0.3)
    assert rec.calls == 2, "the failed job was retried although a newer one was waiting"
    assert [(j.delivery_id, j.version, j.superseded, j.attempt) for j in rec.jobs] == [(newer, "6", [failing], 1)]


def test_a_full_queue_still_takes_a_delivery_that_replaces_a_waiting_job():
    gate = threading.Event()
    rec = Recorder(gate=gate)
    app = create_app(settings(workers=1, queue_size=1), rec, template_config())
    with running(app) as url:
        _post_id(url, alias_body("candidate", "1"))
        _wait(lambda: rec.calls == 1, what="the first job to start")
        _post_id(url, alias_body("champion", "1"))          # the one waiting slot
        assert post(url, alias_body("challenger", "1")).status_code == 503   # a new pair: no room
        replacing = _post_id(url, alias_body("champion", "2"))  # same pair: replaces, needs no room
        gate.set()
        rec.wait_for(2)
    assert rec.jobs[1].delivery_id == replacing and rec.jobs[1].version == "2"


def test_scheduler_keeps_the_replaced_jobs_place_in_line():
    """Unit level: a pair that keeps getting deliveries does not push the others back."""
    sched = PairScheduler(capacity=10)
    a1 = Job("a1", "m", "champion", "1", "prod", 0.0, enqueued_at=1.0)
    b1 = Job("b1", "m", "candidate", "1", "dev", 0.0, enqueued_at=2.0)
    a2 = Job("a2", "m", "champion", "2", "prod", 0.0, enqueued_at=3.0)
    assert sched.put(a1) == "queued" and sched.put(b1) == "queued" and sched.put(a2) == "replaced"
    first = sched.take()
    assert first is a2 and first.superseded == ["a1"] and first.enqueued_at == 1.0
    assert sched.take() is b1
    sched.close()
