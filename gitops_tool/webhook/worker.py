"""Worker threads: run jobs through the handler, retry retryable failures with backoff."""

from __future__ import annotations

import logging
import random
import threading
import time

from gitops_tool.errors import GitopsError
from gitops_tool.webhook.jobs import PairScheduler, Handler, Job, Outcome
from gitops_tool.webhook.logs import event
from gitops_tool.webhook.metrics import Metrics


class WorkerPool:
    def __init__(self, handler: Handler, scheduler: PairScheduler, metrics: Metrics, *,
                 workers: int = 2, max_attempts: int = 5, backoff: float = 1.0,
                 max_backoff: float = 60.0):
        self.handler, self.scheduler, self.metrics = handler, scheduler, metrics
        self.size, self.max_attempts = workers, max_attempts
        self.backoff, self.max_backoff = backoff, max_backoff
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def start(self) -> None:
        with self._lock:
            if self._threads:
                return
            for i in range(self.size):
                thread = threading.Thread(target=self._loop, name=f"webhook-worker-{i}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def alive(self) -> bool:
        return bool(self._threads) and all(t.is_alive() for t in self._threads)

    def stop(self, timeout: float) -> bool:
        """No new job starts; in-flight jobs get ``timeout`` seconds. True if all finished."""
        for job in self.scheduler.close():
            event(logging.WARNING, "job dropped at shutdown (the reconcile loop picks it up)",
                  outcome="dropped", **job.fields())
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        finished = not any(t.is_alive() for t in self._threads)
        if not finished:
            event(logging.ERROR, "in-flight job still running at shutdown deadline",
                  outcome="abandoned", timeout=timeout)
        return finished

    def _loop(self) -> None:
        while (job := self.scheduler.take()) is not None:
            retry_in = None
            try:
                retry_in = self._run(job)
            except Exception:  # a handler bug must not kill the worker or leak the env lock
                event(logging.ERROR, "handler crashed", outcome="failed", exc_info=True, **job.fields())
                self.metrics.promotion(job.env, "failed")
            finally:
                carrier = self.scheduler.done(job, retry_in)
            if carrier is not None and carrier is not job:
                event(logging.INFO, f"retry of delivery {job.delivery_id} left to the newer delivery waiting "
                      "for the same model and environment", outcome="coalesced", **carrier.fields())

    def _run(self, job: Job) -> float | None:
        """Run one attempt; the retry delay if it should be retried, else None."""
        started = time.monotonic()
        event(logging.INFO, "job started", outcome="started", queued=round(started - job.enqueued_at, 3),
              **job.fields())
        try:
            outcome = self.handler(job)
        except GitopsError as exc:
            return self._failed(job, exc, time.monotonic() - started)
        self._succeeded(job, outcome, time.monotonic() - started)
        return None

    def _succeeded(self, job: Job, outcome: Outcome, seconds: float) -> None:
        self.metrics.promotion(job.env, outcome.result)
        if outcome.result == "committed":
            self.metrics.alias_to_commit.observe(max(0.0, time.time() - job.event_timestamp))
        event(logging.INFO, f"job {outcome.result}", outcome=outcome.result, detail=outcome.detail or None,
              commit=outcome.commit, seconds=round(seconds, 3), steps=outcome.steps, **job.fields())

    def _failed(self, job: Job, exc: GitopsError, seconds: float) -> float | None:
        retry = exc.retryable and job.attempt < self.max_attempts
        self.metrics.promotion(job.env, "retried" if retry else "failed")
        delay = self._delay(job.attempt) if retry else None
        event(logging.WARNING if retry else logging.ERROR,
              f"job failed: {exc}", outcome="retried" if retry else "failed", retryable=exc.retryable,
              retry_in=round(delay, 2) if delay else None, seconds=round(seconds, 3), **job.fields())
        return delay

    def _delay(self, attempt: int) -> float:
        """Exponential backoff with +/-20 % jitter so retries from several jobs spread out."""
        base = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        return base * random.uniform(0.8, 1.2)
