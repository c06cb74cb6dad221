"""Step bookkeeping: each step of a promotion records ok / skipped / failed and its time."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

from gitops_tool.promotion.model import StepStatus


class Steps:
    def __init__(self) -> None:
        self.items: list[StepStatus] = []

    @contextmanager
    def run(self, name: str) -> Iterator[StepStatus]:
        step = StepStatus(name)
        self.items.append(step)
        start = time.perf_counter()
        try:
            yield step
        except BaseException as exc:
            step.status, step.detail = "failed", str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise
        finally:
            step.seconds = round(time.perf_counter() - start, 4)
        if step.status == "pending":
            step.status = "ok"

    def skip(self, name: str, reason: str) -> None:
        self.items.append(StepStatus(name, "skipped", reason))
