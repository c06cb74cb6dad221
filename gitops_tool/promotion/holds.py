"""`rollback` and `release`: a rollback is a commit that also places a hold, recorded in Git.

While held, automatic promotions (webhook, reconcile) skip the model in that environment,
so the next alias move cannot silently undo the rollback. `release` lifts the hold.

Both decide from the release files on the remote's tip, again after every rejected push. The
rollback target is the version deployed before the current one in the environment's own chain
(the `gitops-tool.io/deployed-before` annotation), which the rollback pops: a second rollback goes
further back, never forward. A rerun while the rollback's hold is still there converges (no commit).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gitops_tool.errors import GitopsError
from gitops_tool.gitrepo import CommitPlan, GitRepo
from gitops_tool.kustomize.release import Deployed, ReleaseState, parse_image, read_release
from gitops_tool.kustomize.release_edit import ReleaseEdit
from gitops_tool.promotion import after_push, commits
from gitops_tool.promotion.change import land
from gitops_tool.promotion.model import PromotionResult
from gitops_tool.promotion.overlay_edit import apply_edit, schema_dir_from_env, validate_env
from gitops_tool.promotion.steps import Steps
from gitops_tool.promotion.workspace import Workspace, open_workspace

ROLLBACK_HOLD = "rollback from "


@dataclass
class Change:
    """What a rollback or release decided on one tip: the edit and its message, or why not."""

    current: ReleaseState
    edit: ReleaseEdit | None = None
    subject: str = ""
    trailers: dict[str, str] | None = None
    skipped: str | None = None


def rollback(model: str, env: str, to: str | None = None, *, config_path: Path | None = None,
             repo_url: str | None = None, push: bool = True, tracking_uri: str | None = None,
             dry_run: bool = False) -> PromotionResult:
    with open_workspace(config_path, repo_url) as ws:
        m, env = ws.cfg.model(model), ws.cfg.env(env).name
        result = _run(ws, env, m.name, lambda: _decide_rollback(ws, m, env, to, tracking_uri), push, dry_run)
        return after_push.rolled_back(ws.cfg, tracking_uri, result, dry_run)


def release(model: str, env: str, *, config_path: Path | None = None, repo_url: str | None = None,
            push: bool = True, dry_run: bool = False) -> PromotionResult:
    with open_workspace(config_path, repo_url) as ws:
        m, env = ws.cfg.model(model), ws.cfg.env(env).name
        return _run(ws, env, m.name, lambda: _decide_release(ws, m.name, env), push, dry_run)


def _deployed(ws: Workspace, model: str, env: str) -> ReleaseState:
    state = read_release(ws.cfg.env_dir(env)).get(model)
    if state is None or state.version is None:
        raise GitopsError(f"{model} has never been promoted to {env}: nothing to roll back or release")
    return state


def _decide_rollback(ws: Workspace, m, env: str, to: str | None, tracking_uri: str | None) -> Change:
    current = _deployed(ws, m.name, env)
    if current.canary_percent is not None:  # the chain does not hold the stable version yet
        raise GitopsError(f"{m.name} in {env} runs a canary of version {current.version}; nothing committed",
                          hint=f"gitops-tool promote --abort {m.name} --env {env} goes back to the stable version")
    if to is None and current.hold and current.hold.startswith(ROLLBACK_HOLD):
        return Change(current, skipped=f"already rolled back and held ({current.hold})")
    if to == current.version and current.hold:
        return Change(current, skipped=f"already rolled back to {to} and held ({current.hold})")
    target, chain = _target(ws, m.name, env, current, to)
    image, storage = target.image, target.storage_uri
    if not (image or storage):
        image, storage = _from_registry(ws, m, target.version, tracking_uri)
    hold = f"{ROLLBACK_HOLD}{current.version} to {target.version}"
    edit = ReleaseEdit(m.name, target.version, image=parse_image(image) if image else None, storage_uri=storage,
                       hold=hold, before=chain)
    subject = commits.subject("rollback", env, m.name, current.version, target.version) + " (hold)"
    trailers = commits.trailers(model=m.name, env=env, version=target.version, previous=current.version,
                                alias=None, run_id=None, image=image, storage_uri=storage, trigger="rollback",
                                hold=hold)
    return Change(current, edit, subject, trailers)


def _target(ws: Workspace, model: str, env: str, current: ReleaseState,
            to: str | None) -> tuple[Deployed, tuple[Deployed, ...]]:
    """The version to go back to and the chain left after it."""
    chain = current.before
    if to is None:
        if not chain:
            where = f"{ws.cfg.env_dir(env).relative_to(ws.cfg.root)}/release/{model}.yaml"
            raise GitopsError(f"{model} in {env}: no version deployed before {current.version} is recorded in "
                              f"{where}; nothing committed", hint="name one with --to VERSION")
        return chain[0], chain[1:]
    for i, item in enumerate(chain):
        if item.version == to:
            return item, chain[i + 1:]
    return Deployed(to), (current.deployed, *chain)  # never deployed here: the current one stays on the chain


def _from_registry(ws: Workspace, model, version: str, tracking_uri: str | None) -> tuple[str | None, str | None]:
    """The artifact of a version the chain does not describe, as a promotion would pick it."""
    from gitops_tool.promotion.resolve import pick_image, storage_uri
    from gitops_tool.registry import RegistryClient, resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri, ws.cfg.mlflow.get("tracking_uri"))
    with RegistryClient(uri) as client:
        found = client.get_version(model.registered_model, version)
        if model.mode == "image":
            return str(pick_image(model, found, None)), None
        return None, storage_uri(ws.cfg, client, found)


def _decide_release(ws: Workspace, model: str, env: str) -> Change:
    current = _deployed(ws, model, env)
    if not current.hold:
        raise GitopsError(f"{model} in {env} has no hold to release")
    edit = ReleaseEdit(model, current.version or "", clear_hold=True)
    subject = f"release({env}): {model} hold lifted at {current.version}"
    trailers = commits.trailers(model=model, env=env, version=current.version or "", previous=current.version,
                                alias=None, run_id=None, image=current.image, storage_uri=current.storage_uri,
                                trigger="release")
    return Change(current, edit, subject, trailers)


def _run(ws: Workspace, env: str, model: str, decide: Callable[[], Change], push: bool,
         dry_run: bool) -> PromotionResult:
    steps = Steps()
    with steps.run("decide") as step:
        change = decide()
        step.detail = change.skipped or change.subject
    result = PromotionResult(env=env, model=model, alias=None, from_version=change.current.version,
                             to_version=change.edit.version if change.edit else change.current.version or "",
                             image=(change.trailers or {}).get("Image"), steps=steps.items)
    if change.skipped:
        result.skipped = change.skipped
        return result
    attempt = [0]

    def apply(repo: GitRepo) -> CommitPlan | None:
        attempt[0] += 1
        now = change if attempt[0] == 1 else decide()  # a new tip: decide again
        result.from_version, result.to_version = now.current.version, now.edit.version if now.edit else ""
        if now.skipped:
            result.skipped = now.skipped
            return None
        env_dir = ws.cfg.env_dir(env)
        paths, result.diff = apply_edit(env_dir, now.edit, ws.repo.root)
        if not paths:
            return None
        try:
            validate_env(env, env_dir, schema_dir_from_env())
        except BaseException:
            repo.restore(paths)  # commit_and_push only cleans up after apply() returns a plan
            raise
        return CommitPlan(paths, now.subject, "", now.trailers or {})

    return land(ws, env, apply, result, steps, push=push, dry_run=dry_run)


land_change = _run  # canary complete and abort (promotion/canary.py) land the same way
