"""The one error type for expected failures.

Anything raised as ``GitopsError`` is a user-facing problem (bad input, a
registry that is down, a rejected push): the CLI prints it and exits 1.
Every other exception is a bug and surfaces with a traceback and exit 3.
"""

from __future__ import annotations


class GitopsError(Exception):
    """An expected failure: the message names the file, field, model or version."""

    def __init__(self, message: str, *, retryable: bool = False, hint: str | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.hint = hint

    def __str__(self) -> str:
        base = super().__str__()
        return f"{base}\n  hint: {self.hint}" if self.hint else base


class UsageError(GitopsError):
    """The command line itself is wrong (an unparsable reference, a missing --env): exit 2, like click's."""
