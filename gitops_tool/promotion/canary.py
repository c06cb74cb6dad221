"""Canary promotions (KServe Serverless `canaryTrafficPercent`): start, complete, abort.

The state lives in the release patch at the tip, never in history: a running canary is
`spec.predictor.canaryTrafficPercent: N` beside the new version's predictor (image or storageUri) and
its version annotation, plus `gitops-tool.io/canary-from`, the stable version (JSON: version, artifact
and when it was deployed) that keeps the other 100-N percent on KServe's previous ready revision.

- `promote REF --canary N` starts one over the deployed version (Serverless environments only).
- `promote --complete MODEL --env E` runs E's verify checks, then drops canaryTrafficPercent: the new
  version takes all traffic and becomes the release (the stable one goes onto the deployed-before chain).
- `promote --abort MODEL --env E` restores the stable version's artifact and annotation and places a
  hold, so reconcile does not re-promote the aborted version while its alias still points at it.
A failed verification before completion aborts the canary in a commit, the same way.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from gitops_tool.errors import GitopsError
from gitops_tool.kustomize.release import (
    CANARY_FROM_ANNOTATION, DEPLOYED_AT_ANNOTATION, ReleaseState, parse_image, utc_now_text,
)
from gitops_tool.kustomize.release_edit import ReleaseEdit
from gitops_tool.promotion import commits, stage_tags
from gitops_tool.promotion.holds import Change, land_change
from gitops_tool.promotion.model import PromotionRequest, PromotionResult
from gitops_tool.promotion.workspace import Workspace, open_workspace

CANARY_MODES = ("Serverless",)  # KServe's canaryTrafficPercent needs Knative revisions
ABORT_HOLD = "canary of "


def describe(state: ReleaseState | None) -> str | None:
    """`canary 10% -> v3 (stable v2)` while a canary runs, else None."""
    if state is None or state.canary_percent is None:
        return None
    stable = state.canary_from()
    return f"canary {state.canary_percent}% -> v{state.version} (stable v{stable.version if stable else '?'})"


def check_request(cfg, env: str, model: str, current: ReleaseState | None, req: PromotionRequest) -> None:
    """Bad input for `--canary N`, before any decision: mode, percent, something to split traffic with."""
    if req.canary is None:
        return
    mode = cfg.env(env).serving.mode
    if mode not in CANARY_MODES:
        raise GitopsError(f"--canary: environment {env} runs KServe in {mode} mode, which has no canary "
                          f"(canaryTrafficPercent needs Serverless); nothing committed",
                          hint=f"promote without --canary, or set environments.{env}.serving.mode: Serverless")
    if not 1 <= req.canary <= 99:
        raise GitopsError(f"--canary {req.canary}: the canary's share of traffic must be 1-99 percent; nothing "
                          "committed")
    if current is None or current.version is None:
        raise GitopsError(f"--canary: {model} serves nothing in {env} yet, so there is no version to share "
                          "traffic with; promote it without --canary first; nothing committed")
    if current.canary_percent is not None:
        raise GitopsError(f"--canary: {model} in {env} already runs a {describe(current)}; complete or abort it "
                          f"first; nothing committed",
                          hint=f"gitops-tool promote --complete {model} --env {env}  (or --abort)")


def while_running(current: ReleaseState | None, req: PromotionRequest, model: str, env: str) -> str | None:
    """A promotion that would replace a running canary: automatic triggers skip, manual ones fail."""
    if current is None or current.canary_percent is None:
        return None
    text = describe(current)
    if req.trigger in ("webhook", "reconcile", "workflow"):
        return f"{text} running; complete or abort it first"
    raise GitopsError(f"{model} in {env} runs a {text}; complete or abort it before promoting another version; "
                      f"nothing committed", hint=f"gitops-tool promote --complete {model} --env {env}  (or --abort)")


def shape(edit: ReleaseEdit, current: ReleaseState | None, req: PromotionRequest) -> ReleaseEdit:
    """The promotion's edit as a canary: the chain stays, the stable version is remembered."""
    if req.canary is None or current is None or current.deployed is None:
        return edit
    stable = current.deployed.to_json() | {"deployedAt": current.annotations.get(DEPLOYED_AT_ANNOTATION)}
    return replace(edit, before=None, canary_percent=req.canary,
                   annotations=((CANARY_FROM_ANNOTATION, json.dumps(stable, separators=(",", ":"))),))


def message(req: PromotionRequest, subject: str, trailers: dict[str, str]) -> tuple[str, dict[str, str]]:
    if req.canary is None:
        return subject, trailers
    return subject.replace("promote(", "canary(", 1) + f" at {req.canary}%", trailers | {"Canary": f"{req.canary}%"}


# -- complete and abort --------------------------------------------------------------------------


def finish(model: str, env: str, action: str, *, config_path: Path | None = None, repo_url: str | None = None,
           push: bool = True, dry_run: bool = False, tracking_uri: str | None = None,
           reason: str | None = None) -> PromotionResult:
    """`complete` (after env's verify checks) or `abort`; a failed verification aborts and raises."""
    from gitops_tool.promotion.after_push import registry_client

    with open_workspace(config_path, repo_url) as ws:
        m, env = ws.cfg.model(model), ws.cfg.env(env).name
        running(ws, m.name, env)  # nothing to finish: fail before querying anything
        with registry_client(ws.cfg, tracking_uri) as client, stage_tags.reporting(client, enabled=not dry_run):
            return _finish(ws, m, env, action, push, dry_run, tracking_uri, reason)


def _finish(ws: Workspace, m, env: str, action: str, push: bool, dry_run: bool, tracking_uri: str | None,
            reason: str | None) -> PromotionResult:
    if action == "complete":
        failure = _verify(ws, m, env)
        if failure:
            return _abort_after_failure(ws, m, env, failure, push, dry_run, tracking_uri)
        result = land_change(ws, env, m.name, lambda: _decide_complete(ws, m.name, env), push, dry_run)
        if result.commit and result.pushed:
            stage_tags.note(m.registered_model, result.to_version, env, "canary_completed", commit=result.commit)
        return result
    why = reason or "aborted by hand"
    result = land_change(ws, env, m.name, lambda: _decide_abort(ws, m.name, env, why), push, dry_run)
    if result.commit and result.pushed:
        stage_tags.note(m.registered_model, result.from_version, env, "canary_aborted", reason=why,
                        commit=result.commit)
    return result


def running(ws: Workspace, model: str, env: str) -> ReleaseState:
    from gitops_tool.kustomize.release import read_release

    state = read_release(ws.cfg.env_dir(env)).get(model)
    if state is None or state.canary_percent is None:
        serving = f"serves version {state.version}" if state and state.version else "serves nothing"
        raise GitopsError(f"no canary of {model} is running in {env} ({serving} at the remote's tip); nothing "
                          "to complete or abort; nothing committed")
    if state.canary_from() is None:
        raise GitopsError(f"{model} in {env}: canaryTrafficPercent is set but {CANARY_FROM_ANNOTATION} is missing, "
                          "so the stable version is unknown (edited by hand?); fix the release patch")
    return state


def _decide_complete(ws: Workspace, model: str, env: str) -> Change:
    current = running(ws, model, env)
    stable = current.canary_from()
    edit = ReleaseEdit(model, current.version or "", canary_percent=0, before=(stable, *current.before),
                       deployed_at=None, annotations=((CANARY_FROM_ANNOTATION, None),
                                                      (DEPLOYED_AT_ANNOTATION, utc_now_text())))
    subject = commits.subject("canary-complete", env, model, stable.version, current.version or "") + " (100%)"
    trailers = commits.trailers(model=model, env=env, version=current.version or "", previous=stable.version,
                                alias=None, run_id=None, image=current.image, storage_uri=current.storage_uri,
                                trigger="canary-complete") | {"Canary": "complete"}
    return Change(current, edit, subject, trailers)


def _decide_abort(ws: Workspace, model: str, env: str, why: str) -> Change:
    current = running(ws, model, env)
    stable = current.canary_from()
    since = json.loads(current.annotations[CANARY_FROM_ANNOTATION]).get("deployedAt")
    hold = f"{ABORT_HOLD}{current.version} aborted: {why}"
    edit = ReleaseEdit(model, stable.version, image=parse_image(stable.image) if stable.image else None,
                       storage_uri=stable.storage_uri, hold=hold, canary_percent=0, deployed_at=None,
                       annotations=((CANARY_FROM_ANNOTATION, None), (DEPLOYED_AT_ANNOTATION, since)))
    subject = commits.subject("canary-abort", env, model, current.version, stable.version) + " (hold)"
    trailers = commits.trailers(model=model, env=env, version=stable.version, previous=current.version,
                                alias=None, run_id=None, image=stable.image, storage_uri=stable.storage_uri,
                                trigger="canary-abort", hold=hold) | {"Canary": "abort"}
    return Change(current, edit, subject, trailers)


def _verify(ws: Workspace, m, env: str) -> str | None:
    from gitops_tool.promotion.verify import failed_checks

    environment = ws.cfg.env(env)
    if environment.verify is None:
        return None
    return failed_checks(environment, m.name)


def _abort_after_failure(ws: Workspace, m, env: str, failure: str, push: bool, dry_run: bool,
                         tracking_uri: str | None) -> PromotionResult:
    state = running(ws, m.name, env)
    why = f"verification failed: {failure}"
    result = land_change(ws, env, m.name, lambda: _decide_abort(ws, m.name, env, why), push, dry_run)
    if not dry_run:
        stage_tags.note(m.registered_model, state.version, env, "verification_failed", reason=failure,
                        commit=result.commit)
    moved = ""
    if ws.cfg.env(env).verify.on_fail == "abort_and_move_alias" and result.commit and result.pushed:
        moved = _move_aliases_back(ws, m, env, state, tracking_uri)
    if dry_run:
        raise GitopsError(f"{m.name} in {env}: canary of version {state.version} would not complete: {why}; "
                          "without --dry-run it would be aborted and held; nothing committed")
    where = f"commit {result.commit[:12]}" if result.commit else (result.skipped or "no commit")
    raise GitopsError(f"{m.name} in {env}: canary of version {state.version} not completed: {why}; the canary was "
                      f"aborted ({where}) and a hold placed{moved}",
                      hint=f"gitops-tool release {m.name} --env {env} lifts the hold once fixed")


def _move_aliases_back(ws: Workspace, m, env: str, state: ReleaseState, tracking_uri: str | None) -> str:
    from gitops_tool.registry import RegistryClient, resolve_tracking_uri

    stable = state.canary_from()
    uri = resolve_tracking_uri(tracking_uri, ws.cfg.mlflow.get("tracking_uri"))
    moved = []
    with RegistryClient(uri) as client:
        aliases = client.get_model_aliases(m.registered_model)
        for alias, mapped in m.aliases.items():
            if mapped == env and aliases.get(alias) == state.version:
                client.set_alias(m.registered_model, alias, stable.version)
                moved.append(f"@{alias}")
    return f"; moved {', '.join(moved)} back to version {stable.version}" if moved else ""
