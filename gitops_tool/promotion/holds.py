"""`rollback` and `release`: a rollback is a commit that also places a hold, recorded in Git.

While held, automatic promotions (webhook, reconcile) skip the model in that environment,
so the next alias move cannot silently undo the rollback. `release` lifts the hold.
"""

from __future__ import annotations

from pathlib import Path

from gitops_tool.errors import GitopsError
from gitops_tool.gitrepo import CommitPlan, GitRepo, commit_and_push
from gitops_tool.kustomize.release import ReleaseEdit, ReleaseState, parse_image, read_release
from gitops_tool.promotion import commits
from gitops_tool.promotion.engine import PUSH_ATTEMPTS
from gitops_tool.promotion.model import PromotionResult
from gitops_tool.promotion.overlay_edit import apply_edit, schema_dir_from_env, validate_env
from gitops_tool.promotion.steps import Steps
from gitops_tool.promotion.workspace import Workspace, open_workspace


def rollback(model: str, env: str, to: str | None = None, *, config_path: Path | None = None,
             repo_url: str | None = None, push: bool = True, tracking_uri: str | None = None) -> PromotionResult:
    with open_workspace(config_path, repo_url) as ws:
        m, env = ws.cfg.model(model), ws.cfg.env(env).name
        current = _deployed(ws, m.name, env)
        target = to or _previous(ws, m.name, env, current)
        if target == current.version and current.hold:
            raise GitopsError(f"{m.name} in {env} is already rolled back to {target} and held ({current.hold})")
        image, storage = _artifact(ws, m, target, tracking_uri)
        hold = f"rollback from {current.version} to {target}"
        edit = ReleaseEdit(m.name, target, image=parse_image(image) if image else None, storage_uri=storage, hold=hold)
        subject = commits.subject("rollback", env, m.name, current.version, target) + " (hold)"
        trailers = commits.trailers(model=m.name, env=env, version=target, previous=current.version, alias=None,
                                    run_id=None, image=image, storage_uri=storage, trigger="rollback", hold=hold)
        return _commit(ws, env, edit, subject, trailers, current, push)


def release(model: str, env: str, *, config_path: Path | None = None, repo_url: str | None = None,
            push: bool = True) -> PromotionResult:
    with open_workspace(config_path, repo_url) as ws:
        m, env = ws.cfg.model(model), ws.cfg.env(env).name
        current = _deployed(ws, m.name, env)
        if not current.hold:
            raise GitopsError(f"{m.name} in {env} has no hold to release")
        edit = ReleaseEdit(m.name, current.version or "", clear_hold=True)
        subject = f"release({env}): {m.name} hold lifted at {current.version}"
        trailers = commits.trailers(model=m.name, env=env, version=current.version or "", previous=current.version,
                                    alias=None, run_id=None, image=current.image, storage_uri=current.storage_uri,
                                    trigger="release")
        return _commit(ws, env, edit, subject, trailers, current, push)


def _deployed(ws: Workspace, model: str, env: str) -> ReleaseState:
    state = read_release(ws.cfg.env_dir(env)).get(model)
    if state is None or state.version is None:
        raise GitopsError(f"{model} has never been promoted to {env}: nothing to roll back or release")
    return state


def _previous(ws: Workspace, model: str, env: str, current: ReleaseState) -> str:
    for item in commits.history(ws.repo, model, env):
        if item.to_version == current.version and item.from_version and item.from_version != current.version:
            return item.from_version
    raise GitopsError(f"{model} in {env}: no earlier version in the Git history to roll back to",
                      hint="name one with --to VERSION")


def _artifact(ws: Workspace, model, version: str, tracking_uri: str | None) -> tuple[str | None, str | None]:
    """The image (or storageUri) that version was deployed with; the registry only when Git never had it."""
    for item in commits.history(ws.repo, model.name):
        if item.to_version == version and item.image:
            if item.image.startswith("storage "):
                return None, item.image.removeprefix("storage ")
            return item.image, None
    from gitops_tool.promotion.resolve import pick_image, storage_uri
    from gitops_tool.registry import RegistryClient, resolve_tracking_uri

    uri = resolve_tracking_uri(tracking_uri, ws.cfg.mlflow.get("tracking_uri"))
    with RegistryClient(uri) as client:
        found = client.get_version(model.registered_model, version)
        if model.mode == "image":
            return str(pick_image(model, found, None)), None
        return None, storage_uri(ws.cfg, client, found)


def _commit(ws: Workspace, env: str, edit: ReleaseEdit, subject: str, trailers: dict[str, str],
            current: ReleaseState, push: bool) -> PromotionResult:
    steps = Steps()
    result = PromotionResult(env=env, model=edit.model, alias=None, from_version=current.version,
                             to_version=edit.version, image=trailers["Image"], steps=steps.items)

    def apply(repo: GitRepo) -> CommitPlan | None:
        now = read_release(ws.cfg.env_dir(env)).get(edit.model)
        if now != current:
            raise GitopsError(f"conflict: {edit.model} in {env} changed on the remote meanwhile; nothing committed")
        paths, result.diff = apply_edit(ws.cfg.env_dir(env), edit, ws.repo.root)
        if not paths:
            return None
        try:
            validate_env(env, ws.cfg.env_dir(env), schema_dir_from_env())
        except BaseException:
            repo.restore(paths)  # commit_and_push only cleans up after apply() returns a plan
            raise
        return CommitPlan(paths, subject, "", trailers)

    with steps.run("commit+push"):
        pushed = commit_and_push(ws.repo, remote=ws.remote, branch=ws.branch, apply=apply, push=push,
                                 attempts=PUSH_ATTEMPTS)
    result.commit, result.pushed, result.skipped = pushed.commit, pushed.pushed, pushed.skipped
    return result
