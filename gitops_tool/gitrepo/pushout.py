"""Classify `git push --porcelain` results: race (retry) versus terminal failure."""

from __future__ import annotations

import re

from gitops_tool.errors import GitopsError

from ._run import Result, clean_stderr, redact
from .protection import protection_rule


class PushRejected(GitopsError):
    """The remote branch moved under us (non-fast-forward or lost ref-lock race): fetch and retry."""

    def __init__(self, message: str, *, hint: str | None = None):
        super().__init__(message, retryable=True, hint=hint)


# Client-side rejections that mean "someone else pushed first".
_RACE_REJECT = ("non-fast-forward", "fetch first", "stale info", "already exists")
# Server-side ref update failures caused by a concurrent push to the same ref
# (receive-pack lost the lock or saw a different old value). Hook declines are
# deliberately absent: a policy hook says no every time.
_RACE_REMOTE = re.compile(r"lock|failed to update ref|incorrect old value|but expected", re.I)
_STATUS_LINE = re.compile(r"^(?P<flag>[ +\-*!=])\t(?P<ref>[^\t]*)\t(?P<summary>.*)$")


def check_push(result: Result, remote: str, branch: str) -> bool:
    """True if the remote ref moved, False if it already had our commit ("up to date").

    Raises PushRejected (retryable) or GitopsError (terminal)."""
    where = f"push to remote {redact(remote)!r} branch {branch!r}"
    status = [m for m in map(_STATUS_LINE.match, result.out.splitlines()) if m]
    rejected = [m for m in status if m["flag"] == "!"]
    if result.ok and not rejected:
        return not status or any(m["flag"] != "=" for m in status)
    stderr = clean_stderr(result.err)
    for m in rejected:
        summary = m["summary"]
        if summary.startswith("[rejected]") and any(r in summary for r in _RACE_REJECT):
            raise PushRejected(f"{where} rejected: {summary} (the branch moved on the remote)")
        if summary.startswith("[remote rejected]") and "hook declined" not in summary:
            if _RACE_REMOTE.search(summary) or _RACE_REMOTE.search(stderr):
                raise PushRejected(f"{where} lost a race for the ref: {summary}\n{stderr}")
    detail = "; ".join(m["summary"] for m in rejected) or f"git exited with {result.status}"
    hint = None
    if any("hook declined" in m["summary"] for m in rejected):
        hint = "a server-side hook refused the commit; its output is shown above"
    if rule := protection_rule(stderr):
        detail = f"refused by {rule}"
        hint = ("the environment's promotions must go through pull requests (approval: pull_request), "
                "or the pushing identity must be allowed to bypass the rule")
    raise GitopsError(f"{where} failed: {detail}\n{stderr}".rstrip(), retryable=False, hint=hint)
