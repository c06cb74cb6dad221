"""wait and status --cluster: plain functions returning an exit code."""

from __future__ import annotations

import json
from pathlib import Path

from gitops_tool.cli.output import err, out


def _config(config: str | None):
    from gitops_tool.config import find_config, load_config

    return load_config(Path(config) if config else find_config())


def wait(*, env: str, model: str | None, version: str | None, timeout: float, interval: float,
         config: str | None, context: str | None, kubeconfig: str | None, output: str) -> int:
    from gitops_tool.cluster.api import connect
    from gitops_tool.cluster.status import check_env, expected_versions
    from gitops_tool.cluster.wait import wait_live

    cfg = _config(config)
    cfg.env(env)
    wanted = expected_versions(cfg, env, model, version)
    reader = connect(context, kubeconfig)

    def report(problems: list[str]) -> None:
        if output == "text":
            err("waiting: " + "; ".join(problems))

    timeline = _timeline(cfg, env, wanted)

    def check():
        state = check_env(reader, cfg, env, wanted)
        timeline.observe(state)
        return state

    state, problems = wait_live(check, timeout=timeout, interval=interval, report=report)
    for warning in timeline.warnings:
        err(f"warning: {warning}")
    if output == "json":
        out(json.dumps({"env": env, "live": not problems, "problems": problems, "times": timeline.to_json(),
                        "state": state.to_json() if state else None}, indent=2))
    elif problems:
        err(f"{env} is not live after {timeout:g} s:")
        for problem in problems:
            err(f"  - {problem}")
    else:
        versions = ", ".join(f"{m} {v}" for m, v in wanted.items() if v) or "no model"
        out(f"{env} is live: {state.app.name} Synced+Healthy at {(state.app.revision or '')[:12]}; {versions}")
        out(f"  {timeline.line()}")
    return 1 if problems else 0


def _timeline(cfg, env: str, wanted: dict):
    """alias -> committed -> synced -> ready, writing synced/healthy on the versions (registry optional)."""
    from gitops_tool.cluster.timeline import Timeline
    from gitops_tool.errors import GitopsError
    from gitops_tool.registry import RegistryClient, resolve_tracking_uri

    try:
        client = RegistryClient(resolve_tracking_uri(None, cfg.mlflow.get("tracking_uri")), timeout=5, retries=0)
    except GitopsError:
        client = None  # no registry configured: times without the alias, and no tags
    return Timeline(cfg, env, wanted, client)


def status(*, config: str | None, context: str | None, kubeconfig: str | None, output: str) -> int:
    from gitops_tool.cluster.api import connect
    from gitops_tool.cluster.status import check_env
    from gitops_tool.kustomize.release import read_release

    cfg = _config(config)
    reader = connect(context, kubeconfig)
    states = []
    for env in cfg.environments:
        released = read_release(cfg.env_dir(env))
        states.append(check_env(reader, cfg, env, {name: s.version for name, s in released.items()}))
    if output == "json":
        out(json.dumps({"environments": [s.to_json() for s in states]}, indent=2))
    else:
        _print_status(cfg, states)
    return 0 if all(s.live for s in states) else 1


def _print_status(cfg, states) -> None:
    out(f"{'ENV':<10} {'MODEL':<18} {'GIT':>5}  {'SYNC':<10} {'HEALTH':<12} {'REVISION':<13} "
        f"{'ISVC READY':<10} {'VERSION':>7}  LIVE")
    for s in states:
        app = s.app
        sync, health = (app.sync or "-", app.health or "-") if app.found else ("missing", "-")
        revision = (app.revision or "-")[:12] + ("*" if app.found and not s.revision_live else "")
        for model in cfg.models:
            isvc, want = s.isvcs.get(model), s.expected.get(model)
            ready = isvc.ready if isvc and isvc.found else ("missing" if isvc else "-")
            version = (isvc.version if isvc and isvc.found else None) or "-"
            out(f"{s.env:<10} {model:<18} {want or '-':>5}  {sync:<10} {health:<12} {revision:<13} "
                f"{ready or '-':<10} {version:>7}  {'yes' if s.live else 'no'}")
    for s in states:
        for problem in s.problems:
            err(f"{s.env}: {problem}")
    if any(s.app.found and not s.revision_live for s in states):
        err("* the Application's revision does not contain the latest commit in environments/<env>")
