"""Poll the cluster until an environment's Git state is live, or give up at a deadline."""

from __future__ import annotations

import time
from typing import Callable

from gitops_tool.cluster.status import EnvLive
from gitops_tool.errors import GitopsError


def wait_live(check: Callable[[], EnvLive], *, timeout: float, interval: float = 5.0,
              report: Callable[[list[str]], None] | None = None,
              clock: Callable[[], float] = time.monotonic,
              sleep: Callable[[float], None] = time.sleep) -> tuple[EnvLive | None, list[str]]:
    """Returns (last state, problems); no problems means live. ``report`` sees each new problem list.

    An unreachable API counts as a problem and is retried; a refusal (403, bad kubeconfig) raises.
    """
    deadline = clock() + timeout
    last: list[str] | None = None
    state: EnvLive | None = None
    while True:
        try:
            state = check()
            problems = state.problems
        except GitopsError as exc:
            if not exc.retryable:
                raise
            problems = [str(exc).splitlines()[0]]
        if not problems:
            return state, []
        if report is not None and problems != last:
            report(problems)
        last = problems
        remaining = deadline - clock()
        if remaining <= 0:
            return state, problems
        sleep(min(interval, remaining))
