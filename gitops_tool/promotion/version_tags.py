"""Deployment state written back onto the MLflow model version: one tag per environment.

The person who moves `@champion` reads what happened on the version page. The namespace is
`gitops.<env>`: the tag `gitops.<env>` holds a JSON object (keys sorted, no spaces)

    {"state": "committed", "commit": "<sha>", "commit_url": "https://github.com/o/r/commit/<sha>",
     "trigger": "webhook", "updated": "2026-12-03T17:30:01Z"}

`state` is one of STATES (the ones this tool writes; other code may add its own lower_snake
states and fields, e.g. a canary's); the other keys appear when they mean something. One tag, not
one per field, because MLflow has no batch set-tag for model versions: a write is exactly one
`POST /api/2.0/mlflow/model-versions/set-tag`, the only registry round trip it adds to a job.
Each write replaces the value: the tag says the latest thing that happened to this version in
this environment.

`record` never raises: a promotion is done when its commit is pushed, and the registry being
down or the version deleted meanwhile must not turn it into a failure. A failed write is logged
and counted (`failures()`, exported by the receiver as gitops_version_tag_write_failures_total).
"""

from __future__ import annotations

import json
import logging
import re
import threading
from datetime import datetime, timezone
from typing import Any

from gitops_tool.errors import GitopsError

PREFIX = "gitops."
STATES = ("committed", "held", "refused", "synced", "healthy", "rolled_back")
FIELDS = ("commit", "commit_url", "gate", "reason", "trigger", "alias_at", "synced_at", "ready_at")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
MAX_REASON = 1000  # MLflow accepts longer values; a reason longer than this is noise on the version page

log = logging.getLogger("gitops_tool.promotion.version_tags")
log.addHandler(logging.NullHandler())  # the CLI reports the failed step; the receiver logs it as JSON
_lock = threading.Lock()
_counts = {"writes": 0, "failures": 0}


def key(env: str) -> str:
    return f"{PREFIX}{env}"


def value(state: str, **fields: Any) -> str:
    """The tag's JSON text; None fields are left out, the reason is cut to MAX_REASON."""
    bad = [name for name in (state, *fields) if not _NAME.match(name) or name == "updated"]
    if bad:
        raise ValueError(f"deployment state and fields are lower_snake words, not {bad} (known states: "
                         f"{', '.join(STATES)}; fields: {', '.join(FIELDS)})")
    data = {k: str(v) for k, v in fields.items() if v is not None and v != ""}
    if len(data.get("reason", "")) > MAX_REASON:
        data["reason"] = data["reason"][:MAX_REASON - 1] + "…"
    data |= {"state": state, "updated": iso(datetime.now(timezone.utc).timestamp())}
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def iso(ts: float | None) -> str | None:
    """UTC time as the tag's fields carry it (microseconds, Z)."""
    return datetime.fromtimestamp(ts, timezone.utc).strftime(TIME_FORMAT) if ts else None


def epoch(text: str | None) -> float | None:
    try:
        return datetime.strptime(text, TIME_FORMAT).replace(tzinfo=timezone.utc).timestamp() if text else None
    except ValueError:
        return None


def parse(tags: dict[str, str], env: str) -> dict[str, str] | None:
    """The recorded state of one environment from a version's tags, or None."""
    raw = tags.get(key(env))
    if raw is None:
        return None
    try:
        data = json.loads(raw)
    except ValueError:
        return {"state": "unknown", "reason": raw}
    return data if isinstance(data, dict) else {"state": "unknown", "reason": raw}


def record(client, model: str, version: str | None, env: str, state: str, **fields: Any) -> str | None:
    """Write the tag; None on success, else the one-line reason it failed. Never raises.

    ``client`` is a RegistryClient (or None when no registry is configured: counted as a failure).
    """
    if not version:
        return None
    try:
        text = value(state, **fields)
        if client is None:
            raise GitopsError("no MLflow tracking URI configured")
        client.set_version_tag(model, version, key(env), text)
    except Exception as exc:  # noqa: BLE001 - by contract: a tag write never fails its caller
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        _count("failures")
        log.warning("could not record %s on %s version %s (%s): %s", state, model, version, key(env), reason)
        return reason
    _count("writes")
    return None


def _count(what: str) -> None:
    with _lock:
        _counts[what] += 1


def counts() -> dict[str, int]:
    with _lock:
        return dict(_counts)


def failures() -> int:
    return counts()["failures"]


_FORGES = (
    (re.compile(r"^(?:https://|ssh://git@|git@)(github\.com)[/:]([^/\s]+/[^/\s]+?)(?:\.git)?/?$"), "/commit/"),
    (re.compile(r"^(?:https://|ssh://git@|git@)(gitlab\.com|gitlab\.[^/:\s]+)[/:]([^\s]+?)(?:\.git)?/?$"),
     "/-/commit/"),
)


def commit_url(repo_url: str | None, sha: str | None) -> str | None:
    """A browsable URL of the commit when the repo lives on GitHub or GitLab, else None."""
    if not repo_url or not sha:
        return None
    for pattern, path in _FORGES:
        if match := pattern.match(repo_url.strip()):
            return f"https://{match[1]}/{match[2]}{path}{sha}"
    return None


def gate_of(message: str) -> str | None:
    """The gate a refusal names: run_gates' errors start 'gate <name>: ...'."""
    match = re.match(r"gate ([a-z_]+):", message)
    return match[1] if match else None
