"""What follows a promotion's commit+push: ask Argo CD to refresh, record the state on the version.

Two steps with a status each (ok, skipped, failed). Neither can fail the promotion: the commit is
on the remote already. The refresh goes first, so Argo CD starts while the tag is written.
The engine calls `finish` after its commit+push step and `refused` when a gate said no;
rollback calls `rolled_back`.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from gitops_tool.cluster.refresh import request_refresh
from gitops_tool.errors import GitopsError
from gitops_tool.promotion import version_tags
from gitops_tool.promotion.model import PromotionRequest, PromotionResult
from gitops_tool.promotion.steps import Steps

AUTOMATIC = ("webhook", "reconcile", "workflow")  # engine.AUTOMATIC (the engine imports this module)
TAG_STEP, REFRESH_STEP = "record on version", "argocd refresh"


def finish(cfg, client, req: PromotionRequest, result: PromotionResult, steps: Steps) -> PromotionResult:
    """After commit+push (or a skip): refresh when pushed, then one tag write when there is a state."""
    if req.dry_run:
        return result
    if result.pull_request:
        steps.skip(REFRESH_STEP, "a pull request: the environment changes when it is merged")
    elif result.pushed:
        _refresh(cfg, steps, result.env)
    else:
        steps.skip(REFRESH_STEP, "nothing pushed")
    state, fields = _state(cfg, req, result)
    if state is None:
        steps.skip(TAG_STEP, fields.get("reason") or "nothing to record")
        return result
    with steps.run(TAG_STEP) as step:
        failed = version_tags.record(client, _registered(cfg, result.model), result.to_version,
                                     result.env, state, **fields)
        step.status, step.detail = ("failed", failed) if failed else ("ok", f"{version_tags.key(result.env)}: {state}")
    return result


def refused(cfg, client, req: PromotionRequest, result: PromotionResult, steps: Steps, exc: GitopsError) -> None:
    """A gate said no: record which gate and its numbers. Other errors (bad input, a down registry) record nothing."""
    message = str(exc).splitlines()[0]
    gate = version_tags.gate_of(message)
    if gate is None or req.dry_run or not result.to_version:
        return
    with steps.run(TAG_STEP) as step:
        failed = version_tags.record(client, _registered(cfg, result.model), result.to_version, result.env,
                                     "refused", gate=gate, reason=message, trigger=req.trigger)
        step.status, step.detail = ("failed", failed) if failed else ("ok", f"{version_tags.key(result.env)}: refused")
    if failed:
        note = f"the refusal was not recorded on the version ({failed})"
        exc.hint = f"{exc.hint}; {note}" if exc.hint else note


def rolled_back(cfg, tracking_uri: str | None, result: PromotionResult, dry_run: bool) -> PromotionResult:
    """A pushed rollback: `rolled_back` on the version left, `committed` on the one restored (two writes)."""
    if dry_run:
        return result
    steps = Steps()
    steps.items = result.steps
    if not result.pushed:
        steps.skip(REFRESH_STEP, "nothing pushed")
        steps.skip(TAG_STEP, "nothing pushed")
        return result
    _refresh(cfg, steps, result.env)
    model, url = _registered(cfg, result.model), version_tags.commit_url(cfg.repo_url, result.commit)
    with steps.run(TAG_STEP) as step, registry_client(cfg, tracking_uri) as client:
        problems = [p for p in (
            version_tags.record(client, model, result.from_version, result.env, "rolled_back", commit=result.commit,
                                commit_url=url, trigger="rollback", reason=f"rolled back to {result.to_version}"),
            version_tags.record(client, model, result.to_version, result.env, "committed", commit=result.commit,
                                commit_url=url, trigger="rollback"),
        ) if p]
        step.status = "failed" if problems else "ok"
        step.detail = "; ".join(problems) or f"{result.from_version}: rolled_back, {result.to_version}: committed"
    return result


def held(cfg, tracking_uri: str | None, model: str, version: str, env: str, hold: str, trigger: str) -> str | None:
    """An automatic run skipped a held pair before promoting (reconcile): `held` on the alias's version."""
    with registry_client(cfg, tracking_uri) as client:
        return version_tags.record(client, _registered(cfg, model), version, env, "held", reason=hold, trigger=trigger)


def _state(cfg, req: PromotionRequest, result: PromotionResult) -> tuple[str | None, dict]:
    if result.pull_request:
        return None, {"reason": "a pull request is not a deployment yet"}
    if result.skipped and result.skipped.startswith("held: ") and req.trigger in AUTOMATIC:
        return "held", {"reason": result.skipped.removeprefix("held: "), "trigger": req.trigger}
    if result.skipped or not result.commit:
        return None, {"reason": result.skipped or "no commit"}
    if not result.pushed:
        return None, {"reason": "committed but not pushed"}
    if req.canary is not None:
        return "canary_started", {"commit": result.commit, "percent": req.canary, "stable": result.from_version,
                                  "commit_url": version_tags.commit_url(cfg.repo_url, result.commit),
                                  "trigger": req.trigger}
    return "committed", {"commit": result.commit, "commit_url": version_tags.commit_url(cfg.repo_url, result.commit),
                         "trigger": req.trigger, "alias_at": version_tags.iso(req.event_timestamp)}


@contextmanager
def registry_client(cfg, tracking_uri: str | None) -> Iterator:
    """A registry client, or None when no tracking URI is configured (record counts that as a failure)."""
    from gitops_tool.registry import RegistryClient, resolve_tracking_uri

    try:
        client = RegistryClient(resolve_tracking_uri(tracking_uri, cfg.mlflow.get("tracking_uri")))
    except GitopsError:
        yield None
        return
    with client:
        yield client


def _registered(cfg, model: str) -> str:
    try:
        return cfg.model(model).registered_model
    except GitopsError:
        return model


def _refresh(cfg, steps: Steps, env: str) -> None:
    with steps.run(REFRESH_STEP) as step:
        step.status, step.detail = request_refresh(cfg, env)
