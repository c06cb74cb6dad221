"""Canary, soak and verification outcomes as model-version tags (`gitops.<env>`, promotion/version_tags.py).

The decisions that produce them (stage_policy, canary) run deep inside a promotion, where no
registry client is at hand; the engine and `canary.finish` open a `reporting` scope with theirs.
States: canary_completed, canary_aborted, verification_failed, soak_blocked (canary_started is
written after the push by promotion/after_push.py, with the commit). Like every tag write, `note`
never raises. A scope writes each (model, version, env, state) once: a promotion that decides again
after a rejected push does not write its soak_blocked twice. A dry run writes nothing.
"""

from __future__ import annotations

import logging
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Iterator

from gitops_tool.promotion import version_tags

log = logging.getLogger("gitops_tool.promotion.stage_tags")


@dataclass
class _Scope:
    client: object
    enabled: bool
    written: set = field(default_factory=set)


_scope: ContextVar[_Scope | None] = ContextVar("stage_tags_scope", default=None)


@contextmanager
def reporting(client, *, enabled: bool = True) -> Iterator[None]:
    """Notes made inside go to ``client``'s registry; with enabled=False (a dry run) nowhere."""
    token = _scope.set(_Scope(client, enabled))
    try:
        yield
    finally:
        _scope.reset(token)


def note(model: str, version: str | None, env: str, state: str, **fields: object) -> str | None:
    """Record ``state`` on the version; the failure reason (already logged and counted) or None."""
    scope = _scope.get()
    if scope is None or not scope.enabled or not version:
        log.info("%s version %s in %s: %s %s (not recorded: no registry scope)", model, version, env, state, fields)
        return None
    if (model, version, env, state) in scope.written:
        return None
    scope.written.add((model, version, env, state))
    return version_tags.record(scope.client, model, version, env, state, **fields)
