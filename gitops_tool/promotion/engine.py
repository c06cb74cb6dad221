"""The promotion pipeline: resolve → gates → edit overlay → validate → commit → push (or PR).

The CLI, the webhook receiver and reconcile all call `promote`. Every failure raises
GitopsError and leaves Git, the registry and the working tree as they were.
"""

from __future__ import annotations

from pathlib import Path

from gitops_tool.errors import GitopsError
from gitops_tool.gitrepo import CommitPlan, GitRepo, commit_and_push
from gitops_tool.kustomize.release import ReleaseEdit, ReleaseState, read_release
from gitops_tool.promotion import commits
from gitops_tool.promotion.gates import run_gates
from gitops_tool.promotion.model import PromotionRequest, PromotionResult
from gitops_tool.promotion.overlay_edit import apply_edit, schema_dir_from_env, validate_env
from gitops_tool.promotion.resolve import Target, resolve
from gitops_tool.promotion.steps import Steps
from gitops_tool.promotion.workspace import Workspace, open_workspace
from gitops_tool.registry import RegistryClient, resolve_tracking_uri

AUTOMATIC = ("webhook", "reconcile", "workflow")
# Each rejected push re-runs the edit and the validation on the new tip. The gitrepo default (6)
# runs out with 8 simultaneous writers to one branch (tests/test_promote_concurrency.py).
PUSH_ATTEMPTS = 20


def promote(req: PromotionRequest, *, branch: str | None = None, schema_dir: Path | None = None) -> PromotionResult:
    with open_workspace(req.config_path, req.repo_url, branch) as ws:
        return promote_in(ws, req, schema_dir=schema_dir or schema_dir_from_env())


def promote_in(ws: Workspace, req: PromotionRequest, *, schema_dir: Path | None = None) -> PromotionResult:
    steps = Steps()
    cfg = ws.cfg
    uri = resolve_tracking_uri(req.tracking_uri, cfg.mlflow.get("tracking_uri"))
    with RegistryClient(uri) as client:
        with steps.run("resolve") as step:
            target = resolve(cfg, client, req.ref, env=req.env, image_tag=req.image_tag)
            step.detail = f"{target.model.name} version {target.version.version} -> {target.env}"
        env_dir = cfg.env_dir(target.env)
        current = read_release(env_dir).get(target.model.name)
        result = PromotionResult(
            env=target.env, model=target.model.name, alias=target.ref.alias,
            from_version=current.version if current else None, to_version=target.version.version,
            image=target.image_text or target.storage_uri, steps=steps.items,
        )
        if reason := _skip_reason(target, current, req):
            result.skipped = reason
            steps.skip("edit", reason)
            if reason == "already promoted" and req.push and not req.dry_run:
                _push_pending(ws, target, result, steps)
            return result
        with steps.run("gates") as step:
            passed = run_gates(
                gates=target.model.gates, client=client, model_name=target.version.name, env=target.env,
                version=target.version.version, run_id=target.version.run_id,
                deployed_version=current.version if current else None,
                versions_run_in=lambda env: commits.versions_run_in(ws.repo, target.model.name, env),
            )
            step.detail = "; ".join(passed) or "none configured"
    if req.dry_run:
        return _dry_run(ws, req, target, current, result, steps, schema_dir)
    if req.pr:
        from gitops_tool.promotion.pull_request import open_pull_request

        return open_pull_request(ws, req, target, result, steps, _applier(ws, req, target, current, result, schema_dir))
    with steps.run("commit+push") as step:
        pushed = commit_and_push(ws.repo, remote=ws.remote, branch=ws.branch,
                                 apply=_applier(ws, req, target, current, result, schema_dir), push=req.push,
                                 attempts=PUSH_ATTEMPTS)
        result.commit, result.pushed = pushed.commit, pushed.pushed
        if pushed.commit is None:
            result.skipped = result.skipped or pushed.skipped or "no change"
            step.status, step.detail = "skipped", result.skipped
        else:
            step.detail = f"{pushed.commit[:12]} after {pushed.attempts} attempt(s)"
    return result


def _skip_reason(target: Target, current: ReleaseState | None, req: PromotionRequest) -> str | None:
    if current and current.hold:
        if req.trigger in AUTOMATIC:
            return f"held: {current.hold}"
        if not req.force:
            raise GitopsError(
                f"{target.model.name} in {target.env} is on hold ({current.hold}); nothing committed",
                hint=f"run `gitops-tool release {target.model.name} --env {target.env}`, or pass --force",
            )
    if current and _matches(current, target):
        return "already promoted"
    return None


def _matches(state: ReleaseState, target: Target) -> bool:
    same_artifact = state.image == target.image_text if target.image else state.storage_uri == target.storage_uri
    return state.version == target.version.version and same_artifact and not state.hold


def _applier(ws: Workspace, req: PromotionRequest, target: Target, current: ReleaseState | None,
             result: PromotionResult, schema_dir: Path | None):
    """The edit that commit_and_push runs, again on each new remote head after a rejected push."""
    expected = current.version if current else None

    def apply(repo: GitRepo) -> CommitPlan | None:
        env_dir = ws.cfg.env_dir(target.env)
        now = read_release(env_dir).get(target.model.name)
        if (now.version if now else None) != expected:
            if now and _matches(now, target):
                result.skipped = "already promoted"
                return None
            raise GitopsError(
                f"conflict: {target.model.name} in {target.env} moved to version {now.version if now else 'none'} "
                f"while promoting {expected or 'none'} -> {target.version.version}; nothing committed",
                hint="check `gitops-tool history` and promote again if still wanted",
            )
        edit = ReleaseEdit(target.model.name, target.version.version, image=target.image,
                           storage_uri=target.storage_uri, clear_hold=req.force)
        paths, result.diff = apply_edit(env_dir, edit, ws.repo.root)
        if not paths:
            return None
        try:
            validate_env(target.env, env_dir, schema_dir)
        except BaseException:
            repo.restore(paths)  # commit_and_push only cleans up after apply() returns a plan
            raise
        return CommitPlan(paths, *_message(req, target, expected))

    return apply


def _message(req: PromotionRequest, target: Target, previous: str | None) -> tuple[str, str, dict[str, str]]:
    version = target.version
    subject = commits.subject("promote", target.env, target.model.name, previous, version.version, target.ref.alias)
    body = f"Source: {version.source}" if version.source else ""
    return subject, body, commits.trailers(
        model=target.model.name, env=target.env, version=version.version, previous=previous,
        alias=target.ref.alias, run_id=version.run_id, image=target.image_text, storage_uri=target.storage_uri,
        trigger=req.trigger, delivery_id=req.delivery_id,
    )


def _dry_run(ws: Workspace, req: PromotionRequest, target: Target, current: ReleaseState | None,
             result: PromotionResult, steps: Steps, schema_dir: Path | None) -> PromotionResult:
    release_dir = ws.cfg.env_dir(target.env) / "release"
    ws.repo.ensure_clean([release_dir])
    with steps.run("edit+validate (dry run)"):
        try:
            _applier(ws, req, target, current, result, schema_dir)(ws.repo)
        finally:
            ws.repo.restore([release_dir])
    result.skipped = result.skipped or "dry run"
    return result


def _push_pending(ws: Workspace, target: Target, result: PromotionResult, steps: Steps) -> None:
    """A run killed after its commit but before its push left the promotion local: push it now."""
    ws.repo.fetch(ws.remote, ws.branch)
    pending = ws.repo.unpushed(ws.remote, ws.branch)
    if not pending:
        return
    mine = [r for r in ws.repo.log_records(paths=[f"environments/{target.env}"], max_count=len(pending))
            if r.sha in pending and r.trailers.get("Model") == target.model.name]
    if not mine:
        return
    with steps.run("push pending") as step:
        ws.repo.push(ws.remote, ws.branch)
        result.commit, result.pushed, result.skipped = mine[0].sha, True, None
        step.detail = f"{mine[0].sha[:12]}: {mine[0].subject} (committed earlier, not pushed)"
