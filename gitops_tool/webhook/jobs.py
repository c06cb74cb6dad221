"""Jobs, outcomes and a bounded scheduler that runs at most one job per environment at a time."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable


@dataclass
class Job:
    delivery_id: str
    model: str               # registered model name, as the event names it
    alias: str
    version: str
    env: str
    event_timestamp: float   # X-MLflow-Timestamp: when MLflow sent the alias move
    attempt: int = 1
    enqueued_at: float = field(default_factory=time.monotonic)

    def fields(self) -> dict[str, object]:
        return {"delivery_id": self.delivery_id, "model": self.model, "alias": self.alias,
                "version": self.version, "env": self.env, "attempt": self.attempt}


@dataclass(frozen=True)
class Outcome:
    result: str              # committed | skipped | dispatched
    detail: str = ""
    commit: str | None = None


Handler = Callable[[Job], Outcome]


class EnvScheduler:
    """FIFO per environment; a job starts only when no other job of its env is running.

    Workers never block on a busy env: ``take`` hands out the oldest runnable job of an idle
    env. A job waiting for a retry keeps its env reserved (it goes back to the head of its
    env's line), so promotions to one env stay in delivery order.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._lines: dict[str, deque[Job]] = {}
        self._not_before: dict[str, float] = {}
        self._running: set[str] = set()
        self._pending = 0
        self._closed = False
        self._cond = threading.Condition()

    def put(self, job: Job) -> bool:
        """Queue a new job; False when the queue is full or closed."""
        with self._cond:
            if self._closed or self._pending >= self.capacity:
                return False
            self._lines.setdefault(job.env, deque()).append(job)
            self._pending += 1
            self._cond.notify_all()
            return True

    def take(self) -> Job | None:
        """Block until a job can start; None once closed (no new job starts after close)."""
        with self._cond:
            while not self._closed:
                job, wait = self._runnable(time.monotonic())
                if job is not None:
                    self._lines[job.env].popleft()
                    self._pending -= 1
                    self._running.add(job.env)
                    return job
                self._cond.wait(wait)
            return None

    def _runnable(self, now: float) -> tuple[Job | None, float | None]:
        best, wait = None, None
        for env, line in self._lines.items():
            if not line or env in self._running:
                continue
            ready = self._not_before.get(env, 0.0)
            if ready > now:
                wait = ready - now if wait is None else min(wait, ready - now)
            elif best is None or line[0].enqueued_at < best.enqueued_at:
                best = line[0]
        return best, wait

    def done(self, job: Job, retry_in: float | None = None) -> None:
        """Free the job's env; with ``retry_in`` the job goes back first in its env's line."""
        with self._cond:
            self._running.discard(job.env)
            if retry_in is not None and not self._closed:
                job.attempt += 1
                self._lines.setdefault(job.env, deque()).appendleft(job)
                self._not_before[job.env] = time.monotonic() + retry_in
                self._pending += 1  # a retry may exceed capacity: it was already accepted
            else:
                self._not_before.pop(job.env, None)
            self._cond.notify_all()

    def close(self) -> list[Job]:
        """Stop handing out jobs; return the ones that never started (for the log)."""
        with self._cond:
            self._closed = True
            left = [job for line in self._lines.values() for job in line]
            self._lines.clear()
            self._pending = 0
            self._cond.notify_all()
            return left

    def depth(self) -> int:
        return self._pending

    def full(self) -> bool:
        return self._pending >= self.capacity

    def running(self) -> int:
        return len(self._running)
