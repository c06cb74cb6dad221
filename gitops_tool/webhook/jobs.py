"""Jobs, outcomes and a bounded scheduler that coalesces deliveries per (model, environment).

For each pair at most one job runs and at most one waits. A newer delivery for a pair whose job is
already waiting replaces that job's event (the newest registry state is what the engine enacts
anyway); the replaced delivery ids travel with the job (``superseded``) into the log and the commit.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Callable

Pair = tuple[str, str]  # (model as the event names it, environment)


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
    superseded: list[str] = field(default_factory=list)  # older deliveries of the pair this job enacts too

    @property
    def pair(self) -> Pair:
        return self.model, self.env

    def fields(self) -> dict[str, object]:
        out: dict[str, object] = {"delivery_id": self.delivery_id, "model": self.model, "alias": self.alias,
                                  "version": self.version, "env": self.env, "attempt": self.attempt}
        if self.superseded:
            out["superseded"] = list(self.superseded)
        return out


@dataclass(frozen=True)
class Outcome:
    result: str              # committed | skipped | dispatched
    detail: str = ""
    commit: str | None = None
    steps: dict[str, float] | None = None  # seconds per promotion step, for the log


Handler = Callable[[Job], Outcome]


class PairScheduler:
    """One running and one waiting job per (model, environment); the waiting one is the newest event.

    Workers never block on a busy pair: ``take`` hands out the oldest waiting job whose pair is idle.
    A replaced job keeps its place in line (its ``enqueued_at``), so a pair that keeps receiving
    deliveries is not starved by the others. A job waiting for a retry holds its pair's waiting slot;
    a newer delivery takes that slot (and the backoff) over. Jobs of different pairs, even of one
    environment, may run together: the engine re-decides on the new tip when its push is rejected.
    """

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._waiting: dict[Pair, Job] = {}
        self._not_before: dict[Pair, float] = {}
        self._running: set[Pair] = set()
        self._closed = False
        self._cond = threading.Condition()

    def put(self, job: Job) -> str | None:
        """Queue a new job ("queued") or let it replace its pair's waiting job ("replaced");
        None when the queue is full or closed.

        Replacing never needs room, so a burst on busy pairs is always accepted."""
        with self._cond:
            if self._closed:
                return None
            older = self._waiting.get(job.pair)
            if older is None and len(self._waiting) >= self.capacity:
                return None
            if older is not None:
                job.superseded = [*older.superseded, older.delivery_id, *job.superseded]
                job.enqueued_at = older.enqueued_at
            self._waiting[job.pair] = job
            self._cond.notify_all()
            return "queued" if older is None else "replaced"

    def take(self) -> Job | None:
        """Block until a job can start; None once closed (no new job starts after close)."""
        with self._cond:
            while not self._closed:
                job, wait = self._runnable(time.monotonic())
                if job is not None:
                    del self._waiting[job.pair]
                    self._running.add(job.pair)
                    return job
                self._cond.wait(wait)
            return None

    def _runnable(self, now: float) -> tuple[Job | None, float | None]:
        best, wait = None, None
        for pair, job in self._waiting.items():
            if pair in self._running:
                continue
            ready = self._not_before.get(pair, 0.0)
            if ready > now:
                wait = ready - now if wait is None else min(wait, ready - now)
            elif best is None or job.enqueued_at < best.enqueued_at:
                best = job
        return best, wait

    def done(self, job: Job, retry_in: float | None = None) -> Job | None:
        """Free the job's pair. With ``retry_in`` the pair waits that long, then runs the job again,
        or the newer job already waiting, which takes this one's delivery ids along. Returns the job
        that will carry the retry (None without one)."""
        with self._cond:
            self._running.discard(job.pair)
            carrier = None
            if retry_in is not None and not self._closed:
                newer = self._waiting.get(job.pair)
                if newer is not None:
                    newer.superseded = [*job.superseded, job.delivery_id, *newer.superseded]
                    newer.enqueued_at = min(newer.enqueued_at, job.enqueued_at)
                    carrier = newer
                else:
                    job.attempt += 1
                    self._waiting[job.pair] = carrier = job  # may exceed capacity: it was already accepted
                self._not_before[job.pair] = time.monotonic() + retry_in
            else:
                self._not_before.pop(job.pair, None)
            self._cond.notify_all()
            return carrier

    def close(self) -> list[Job]:
        """Stop handing out jobs; return the ones that never started (for the log)."""
        with self._cond:
            self._closed = True
            left = list(self._waiting.values())
            self._waiting.clear()
            self._cond.notify_all()
            return left

    def depth(self) -> int:
        return len(self._waiting)

    def full(self) -> bool:
        return len(self._waiting) >= self.capacity

    def running(self) -> int:
        return len(self._running)
