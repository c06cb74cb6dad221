"""`retire MODEL --env ENV`: stop serving a model in one environment, with a commit on the remote's tip.

The way to take a model out of gitops.yaml: retire it from every environment, then remove it and
run `generate` (which refuses to drop base/serving/<model> while a release still references it).
"""

from __future__ import annotations

from pathlib import Path

from gitops_tool.errors import GitopsError
from gitops_tool.gitrepo import CommitPlan, GitRepo
from gitops_tool.kustomize.release import read_release
from gitops_tool.kustomize.retire import apply_retire, references
from gitops_tool.promotion import commits
from gitops_tool.promotion.change import land
from gitops_tool.promotion.model import PromotionResult
from gitops_tool.promotion.overlay_edit import schema_dir_from_env, validate_env
from gitops_tool.promotion.steps import Steps
from gitops_tool.promotion.workspace import open_workspace


def retire(model: str, env: str, *, config_path: Path | None = None, repo_url: str | None = None,
           push: bool = True, dry_run: bool = False) -> PromotionResult:
    with open_workspace(config_path, repo_url) as ws:
        env = ws.cfg.env(env).name
        env_dir = ws.cfg.env_dir(env)
        state = read_release(env_dir).get(model)
        if not references(env_dir, model):
            raise GitopsError(f"{model} is not served in {env} ({env_dir.relative_to(ws.cfg.root)}/release): "
                              f"nothing to retire")
        version = state.version if state and state.version else None
        steps = Steps()
        result = PromotionResult(env=env, model=model, alias=None, from_version=version, to_version="none",
                                 image=None, steps=steps.items)

        def apply(repo: GitRepo) -> CommitPlan | None:
            if not references(env_dir, model):  # a new tip on which someone retired it already
                result.skipped = "already retired"
                return None
            paths = apply_retire(env_dir, model)
            try:
                validate_env(env, env_dir, schema_dir_from_env())
            except BaseException:
                repo.restore(paths)
                raise
            trailers = commits.trailers(model=model, env=env, version="none", previous=version, alias=None,
                                        run_id=None, image=None, storage_uri=None, trigger="retire")
            return CommitPlan(paths, f"retire({env}): {model} {version or 'none'} -> none", "", trailers)

        return land(ws, env, apply, result, steps, push=push, dry_run=dry_run)
