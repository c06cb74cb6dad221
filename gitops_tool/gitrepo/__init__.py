"""The Git layer for promotions: commits with trailers, pushes that survive races.

Thin over `git` subprocesses (LC_ALL=C, no prompts, see _run); a subprocess per step is both
simpler and faster for clone/commit/push on small overlay repos than a Git library."""

from __future__ import annotations

from .local import init_bare_remote, push_branch
from .messages import CommitRecord, build_message
from .pushout import PushRejected
from .repo import GitRepo
from .retry import CommitPlan, PushResult, commit_and_push

__all__ = [
    "CommitPlan",
    "CommitRecord",
    "GitRepo",
    "PushRejected",
    "PushResult",
    "build_message",
    "commit_and_push",
    "init_bare_remote",
    "push_branch",
]
