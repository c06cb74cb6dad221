"""The receiver's pool of warm clones: created with the handler, logged when one is thrown away,
removed at exit (a SIGKILLed receiver leaves it to the next start's stale-clone sweep)."""

from __future__ import annotations

import atexit
import logging
from pathlib import Path

from gitops_tool.gitrepo.warm import ClonePool
from gitops_tool.webhook.logs import event
from gitops_tool.webhook.settings import ReceiverSettings


def receiver_clone_pool(settings: ReceiverSettings) -> ClonePool:
    def discarded(path: Path, why: str) -> None:
        event(logging.INFO, f"warm clone discarded, the next job clones afresh: {why}", outcome="clone_discarded",
              clone=path.name)

    pool = ClonePool(str(settings.repo_url), settings.branch or "main", on_discard=discarded)
    atexit.register(pool.close)
    return pool
