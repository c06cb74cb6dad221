"""A promotion as a pull request: one branch and one open PR per (model, environment).

Used for every promotion into an `approval: pull_request` environment, whatever the trigger, and
for `promote --pr` anywhere. The order keeps failures clean:

1. ask GitHub for the open PR of the branch first: an unreachable API fails (retryably) before anything
   is pushed;
2. build the commit on the remote's tip; when the branch already holds exactly this change on this tip,
   push nothing (a reconcile every 5 minutes must not dismiss a reviewer's approval by force-pushing
   the same change again);
3. force-push the branch (it belongs to this model and environment: the newest alias state wins);
4. create the PR, or update its title and body; if that fails, put the branch back as it was
   (deleted, or its previous commit) so nothing is left behind.

The base branch only moves when a person merges the PR.
"""

from __future__ import annotations

import os
import re
from typing import Callable

from gitops_tool.errors import GitopsError
from gitops_tool.gitrepo import CommitPlan, GitRepo, commit_and_push
from gitops_tool.kustomize.release import DEPLOYED_AT_ANNOTATION
from gitops_tool.promotion.github_api import GitHub, repo_slug
from gitops_tool.promotion.model import PromotionRequest, PromotionResult
from gitops_tool.promotion.resolve import Target
from gitops_tool.promotion.review_body import pr_body, pr_title
from gitops_tool.promotion.steps import Steps
from gitops_tool.promotion.workspace import Workspace

BRANCH_PREFIX = "gitops-tool/promote"


def pr_branch(env: str, model: str) -> str:
    return f"{BRANCH_PREFIX}/{env}/{model}"


def open_pull_request(ws: Workspace, req: PromotionRequest, target: Target, result: PromotionResult,
                      steps: Steps, apply: Callable[[GitRepo], CommitPlan | None]) -> PromotionResult:
    token = os.environ.get("GITHUB_TOKEN")
    if not token:
        raise GitopsError(f"promotions into {target.env} go through a pull request, which needs a GitHub token in "
                          f"GITHUB_TOKEN; nothing committed or pushed")
    github = GitHub(repo_slug(ws.cfg), token)
    branch = pr_branch(target.env, target.model.name)
    try:
        return _open(ws, req, target, result, steps, apply, github, branch)
    finally:  # the private ref shares the checkout's ref store in checkout mode: leave nothing there
        ws.repo._git("update-ref", "-d", _before_ref(branch))


def _before_ref(branch: str) -> str:
    return f"refs/gitops-tool/pr-before/{branch}"


def _open(ws: Workspace, req: PromotionRequest, target: Target, result: PromotionResult, steps: Steps,
          apply: Callable[[GitRepo], CommitPlan | None], github: GitHub, branch: str) -> PromotionResult:
    with steps.run("find pull request") as step:
        existing = github.open_pull(branch)  # unreachable: retryable, and nothing was pushed
        step.detail = existing["html_url"] if existing else f"none open for {branch}"
    orig = ws.repo.head_sha()
    with steps.run("commit+push branch") as step:
        local = commit_and_push(ws.repo, remote=ws.remote, branch=ws.branch, apply=apply, push=False)
        if local.commit is None:
            result.skipped = result.skipped or local.skipped or "no change"
            step.status, step.detail = "skipped", result.skipped
            return result
        try:
            old = _fetch_branch(ws, branch)
            if existing and old and _same_change(ws.repo, old, local.commit):
                result.commit, result.pushed = old, False
                step.status, step.detail = "skipped", f"{branch} already holds this change on {orig[:12]}"
            else:
                ws.repo.push(ws.remote, branch, refspec=f"+HEAD:refs/heads/{branch}")
                result.commit, result.pushed = local.commit, True
                step.detail = f"{local.commit[:12]} on {branch}"
        finally:
            ws.repo.reset_to(orig, mode="--hard")  # the base branch only moves when the PR merges
    with steps.run("pull request") as step:
        title, body = pr_title(result), pr_body(ws.cfg, ws.repo, result, req, steps)
        try:
            pull = (github.update_pull(existing["number"], title, body) if existing
                    else github.create_pull(branch, ws.branch, title, body))
        except GitopsError as exc:
            left = _put_back(ws, branch, old if result.pushed else None, result.pushed)
            raise GitopsError(f"{exc}; {left}", retryable=exc.retryable) from None
        result.pull_request = pull.get("html_url") or (existing or {}).get("html_url")
        step.detail = f"{'updated' if existing else 'opened'} {result.pull_request}"
    return result


def close_stale_pull_request(ws: Workspace, target: Target, reason: str) -> str | None:
    """The alias names what the branch already deploys: an open PR for another version is stale. Close it
    (and delete its branch) so nobody merges what the registry no longer asks for; its URL, or None."""
    token = os.environ.get("GITHUB_TOKEN")
    if not token:
        return None  # nothing could have been opened without one
    github = GitHub(repo_slug(ws.cfg), token)
    branch = pr_branch(target.env, target.model.name)
    pull = github.open_pull(branch)
    if pull is None:
        return None
    github.close_pull(pull["number"], f"{pull.get('body') or ''}\n\nClosed by gitops-tool: {reason}.")
    ws.repo._git("push", "--quiet", ws.remote, f":refs/heads/{branch}")
    return pull.get("html_url")


def _fetch_branch(ws: Workspace, branch: str) -> str | None:
    """The branch's commit on the remote, fetched so it can be compared and put back; None if absent."""
    ref = _before_ref(branch)
    args = ["fetch", "--quiet", *(["--depth=1"] if ws.cloned else []), ws.remote, f"+refs/heads/{branch}:{ref}"]
    res = ws.repo._git(*args)
    if not res.ok:
        if "couldn't find remote ref" in res.err or "could not find remote ref" in res.err.lower():
            return None
        raise GitopsError(f"fetching {branch} from remote {ws.remote!r} failed: {res.err.strip()}")
    return ws.repo._git("rev-parse", ref).out.strip() or None


def _same_change(repo: GitRepo, old: str, new: str) -> bool:
    """Same parent (the same tip of the base branch) and the same files: the same promotion.

    The deployed-at stamp (soak, kustomize/release.py) is the time the commit was built, so a rebuild
    of the same promotion differs from the branch in that line alone; re-pushing it would dismiss a
    reviewer's approval for nothing.
    """
    def parent_and_tree(sha: str) -> tuple[str, str]:
        lines = repo._git("cat-file", "-p", sha).out.splitlines()
        tree = next((ln.split()[1] for ln in lines if ln.startswith("tree ")), "")
        parent = next((ln.split()[1] for ln in lines if ln.startswith("parent ")), "")
        return parent, tree

    (old_parent, old_tree), (new_parent, new_tree) = parent_and_tree(old), parent_and_tree(new)
    if old_parent != new_parent:
        return False
    if old_tree == new_tree:
        return True
    diff = repo._git("diff", "--unified=0", "--no-color", old, new).out.splitlines()
    changed = [ln[1:] for ln in diff if ln[:1] in "+-" and not ln.startswith(("+++", "---"))]
    return bool(changed) and all(_STAMP.match(line) for line in changed)


_STAMP = re.compile(rf"^\s*{re.escape(DEPLOYED_AT_ANNOTATION)}:\s*\S+\s*$")


def _put_back(ws: Workspace, branch: str, old: str | None, pushed: bool) -> str:
    """After the PR call failed: restore the branch as it was before, and say plainly what is on the remote."""
    if not pushed:
        return f"branch {branch} on remote {ws.remote!r} was not changed"
    spec = f"+{old}:refs/heads/{branch}" if old else f":refs/heads/{branch}"
    try:
        ws.repo.push(ws.remote, branch, refspec=spec)
    except GitopsError as exc:
        return f"branch {branch} was pushed to remote {ws.remote!r} and could not be put back: {exc}"
    if old:
        return f"branch {branch} was pushed and put back at {old[:12]}; its pull request did not change"
    return f"branch {branch} was pushed and deleted again; nothing is left on remote {ws.remote!r}"
