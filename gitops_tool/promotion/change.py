"""The tail shared by rollback, release and retire: dry run, or commit+push on the tip, then report."""

from __future__ import annotations

from typing import Callable

from gitops_tool.gitrepo import CommitPlan, GitRepo, commit_and_push
from gitops_tool.promotion.model import PromotionResult
from gitops_tool.promotion.steps import Steps
from gitops_tool.promotion.workspace import Workspace

# Each rejected push re-runs the decision and the edit on the new tip. The gitrepo default (6)
# runs out with 8 simultaneous writers to one branch (tests/test_promote_concurrency.py).
PUSH_ATTEMPTS = 20


def land(ws: Workspace, env: str, apply: Callable[[GitRepo], CommitPlan | None], result: PromotionResult,
         steps: Steps, *, push: bool, dry_run: bool) -> PromotionResult:
    if dry_run:
        with steps.run("edit+validate (dry run)"):
            try:
                apply(ws.repo)
            finally:
                ws.repo.restore([ws.cfg.env_dir(env) / "release"])
        result.skipped = result.skipped or "dry run"
        return result
    with steps.run("commit+push"):
        pushed = commit_and_push(ws.repo, remote=ws.remote, branch=ws.branch, apply=apply, push=push,
                                 attempts=PUSH_ATTEMPTS)
    result.commit, result.pushed = pushed.commit, pushed.pushed
    result.skipped = result.skipped or pushed.skipped
    if result.commit and not result.pushed:
        result.kept_on = ws.keep_unpushed(env, result.model, result.commit)
    elif result.pushed:
        result.checkout = ws.sync_user()
    return result
