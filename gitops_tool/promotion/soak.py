"""Soak: how long a version has served in the environment a stage takes it from.

`environments.<up>.soak: 30m` holds back the next stage of a model's chain (its
gates.require_previous_stage, e.g. {prod: staging}) until the version has served in `up` that long.
Served since = the `gitops-tool.io/deployed-at` annotation the deploying commit wrote into the release
patch (a completed canary: the completion; a canary still running does not count). Health is what
`environments.<up>.verify` checks, when configured; soak itself measures time from that commit.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone

from gitops_tool.kustomize.release import CANARY_FROM_ANNOTATION, DEPLOYED_AT_ANNOTATION, ReleaseState, read_release


def upstream(model, env: str) -> str | None:
    """The environment this model's chain feeds `env` from (gates.require_previous_stage), if any."""
    return (model.gates.get("require_previous_stage") or {}).get(env)


def shortfall(cfg, model, env: str, version: str, now: datetime | None = None) -> str | None:
    """Why `version` has not soaked long enough to enter `env`, or None when it has (or no soak applies)."""
    up = upstream(model, env)
    need = cfg.environments[up].soak_seconds if up else None
    if not need:
        return None
    state = read_release(cfg.env_dir(up)).get(model.name)
    since, why = _served_since(state, version, up)
    if since is None:
        return f"soak {_text(need)} in {up}: {model.name} version {version} {why}"
    served = ((now or datetime.now(timezone.utc)) - since).total_seconds()
    if served >= need:
        return None
    return (f"soak {_text(need)} in {up}: {model.name} version {version} has served there {_text(served)} "
            f"(since {since:%Y-%m-%dT%H:%M:%SZ}); {_text(need - served)} to go")


def _served_since(state: ReleaseState | None, version: str, up: str) -> tuple[datetime | None, str]:
    if state is None or state.version is None:
        return None, f"has not served in {up}"
    stamp = state.annotations.get(DEPLOYED_AT_ANNOTATION)
    if state.canary_percent is not None:
        if state.version == version:
            return None, f"is a canary ({state.canary_percent}%) in {up}, not yet its release there"
        if (stable := state.canary_from()) and stable.version == version:
            stamp = json.loads(state.annotations[CANARY_FROM_ANNOTATION]).get("deployedAt")
        else:
            return None, f"does not serve in {up} (it serves {state.version} as a canary)"
    elif state.version != version:
        return None, f"does not serve in {up} now (it serves {state.version}); its time there is not recorded"
    if not stamp:
        return None, (f"has no {DEPLOYED_AT_ANNOTATION} in {up}'s release patch (deployed before soak "
                      "existed), so its time there is unknown")
    try:
        return datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc), ""
    except ValueError:
        return None, f"has an unreadable {DEPLOYED_AT_ANNOTATION} ({stamp!r}) in {up}"


def _text(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h"] * bool(hours) + [f"{minutes}m"] * bool(minutes) + [f"{secs}s"] * bool(secs)
    return "".join(parts) or "0s"
