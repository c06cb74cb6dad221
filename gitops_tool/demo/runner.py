"""Demo plumbing: timed steps, the processes the demo starts, and stopping all of them on any exit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Iterator


@dataclass
class DemoStep:
    number: int
    title: str
    seconds: float = 0.0
    status: str = "pending"


@dataclass
class Progress:
    total: int
    quiet: bool = False
    steps: list[DemoStep] = field(default_factory=list)
    started: float = field(default_factory=time.perf_counter)

    def say(self, text: str = "") -> None:
        if not self.quiet:
            print(text, flush=True)

    @contextmanager
    def step(self, title: str) -> Iterator[DemoStep]:
        item = DemoStep(len(self.steps) + 1, title)
        self.steps.append(item)
        self.say(f"\n[{item.number}/{self.total}] {title}")
        start = time.perf_counter()
        try:
            yield item
            item.status = "ok"
        except BaseException:
            item.status = "failed"
            raise
        finally:
            item.seconds = round(time.perf_counter() - start, 3)
            if item.status == "ok":
                self.say(f"      done in {item.seconds:.1f}s")

    @property
    def current(self) -> DemoStep | None:
        return self.steps[-1] if self.steps else None

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started


class Processes:
    """Every process the demo starts, each in its own process group, so stop() leaves nothing behind."""

    def __init__(self) -> None:
        self._procs: list[subprocess.Popen] = []
        self._stoppers: list[Callable[[], None]] = []

    def spawn(self, args: list[str], *, log_path, env: dict | None = None) -> subprocess.Popen:
        log = open(log_path, "ab")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
        log.close()
        self._procs.append(proc)
        return proc

    def on_stop(self, stopper: Callable[[], None]) -> None:
        self._stoppers.append(stopper)

    def stop(self) -> None:
        for proc in reversed(self._procs):
            _stop_group(proc)
        for stopper in reversed(self._stoppers):
            try:
                stopper()
            except Exception as exc:  # noqa: BLE001 - keep stopping the others
                print(f"warning: while stopping: {exc}", file=sys.stderr)
        self._procs.clear()
        self._stoppers.clear()


def _stop_group(proc: subprocess.Popen, grace: float = 5.0) -> None:
    if proc.poll() is not None:
        return
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue
