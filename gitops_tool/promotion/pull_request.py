"""`promote --pr`: push the promotion to its own branch and open (or reuse) a GitHub pull request.

Talks to the GitHub REST API (`GITHUB_API_URL`, default https://api.github.com) with `GITHUB_TOKEN`.
"""

from __future__ import annotations

import os
import re
from typing import Callable

from gitops_tool.errors import GitopsError
from gitops_tool.gitrepo import CommitPlan, GitRepo, commit_and_push
from gitops_tool.promotion.model import PromotionRequest, PromotionResult
from gitops_tool.promotion.resolve import Target
from gitops_tool.promotion.steps import Steps
from gitops_tool.promotion.workspace import Workspace

_GITHUB_URL = re.compile(r"github\.com[:/](?P<slug>[^/]+/[^/]+?)(?:\.git)?/?$")


def repo_slug(repo_url: str) -> str:
    if slug := os.environ.get("GITHUB_REPOSITORY"):
        return slug
    if match := _GITHUB_URL.search(repo_url):
        return match["slug"]
    raise GitopsError(f"cannot tell the GitHub owner/repo from repo.url {repo_url!r}",
                      hint="set GITHUB_REPOSITORY=owner/name")


def pr_branch(env: str, model: str) -> str:
    return f"gitops-tool/promote-{env}-{model}"


def open_pull_request(ws: Workspace, req: PromotionRequest, target: Target, result: PromotionResult,
                      steps: Steps, apply: Callable[[GitRepo], CommitPlan | None]) -> PromotionResult:
    token = os.environ.get("GITHUB_TOKEN")
    if not token:
        raise GitopsError("--pr needs a GitHub token in GITHUB_TOKEN; nothing committed")
    slug = repo_slug(ws.cfg.repo_url)
    branch = pr_branch(target.env, target.model.name)
    orig = ws.repo.head_sha()
    with steps.run("commit+push branch") as step:
        local = commit_and_push(ws.repo, remote=ws.remote, branch=ws.branch, apply=apply, push=False)
        if local.commit is None:
            result.skipped = result.skipped or local.skipped
            step.status, step.detail = "skipped", result.skipped or ""
            return result
        existed = _remote_has(ws.repo, ws.remote, branch)
        try:
            # Force: the branch belongs to this model and environment; a newer promotion replaces it.
            ws.repo.push(ws.remote, branch, refspec=f"+HEAD:refs/heads/{branch}")
        finally:
            ws.repo.reset_to(orig, mode="--hard")  # the base branch only moves when the PR merges
        result.commit, result.pushed = local.commit, True
        step.detail = f"{local.commit[:12]} on {branch}"
    with steps.run("pull request") as step:
        title = f"promote({target.env}): {target.model.name} {result.from_version or 'none'} -> {result.to_version}"
        try:
            result.pull_request = _create_or_reuse(slug, branch, ws.branch, title, _body(result), token)
        except GitopsError as exc:
            raise GitopsError(f"{exc}; {_left_behind(ws, branch, existed)}", retryable=exc.retryable) from None
        step.detail = result.pull_request
    return result


def _remote_has(repo: GitRepo, remote: str, branch: str) -> bool:
    res = repo._git("ls-remote", "--heads", remote, f"refs/heads/{branch}")
    return bool(res.ok and res.out.strip())


def _left_behind(ws: Workspace, branch: str, existed: bool) -> str:
    """After the PR call failed: take back a branch we created, say plainly what is on the remote."""
    if existed:
        return (f"branch {branch} on remote {ws.remote!r} already existed and now holds this commit "
                f"(no pull request was opened or updated)")
    try:
        ws.repo.push(ws.remote, branch, refspec=f":refs/heads/{branch}")
    except GitopsError as exc:
        return f"branch {branch} was pushed to remote {ws.remote!r} and could not be deleted again: {exc}"
    return f"branch {branch} was pushed and deleted again; nothing is left on remote {ws.remote!r}"


def _body(result: PromotionResult) -> str:
    return (f"Promotes **{result.model}** in **{result.env}** from version {result.from_version or 'none'} "
            f"to **{result.to_version}**{f' (@{result.alias})' if result.alias else ''}.\n\n"
            f"Image: `{result.image}`\n\nOpened by gitops-tool.")


def _create_or_reuse(slug: str, head: str, base: str, title: str, body: str, token: str) -> str:
    import requests

    api = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                            "X-GitHub-Api-Version": "2022-11-28"})
    owner = slug.split("/")[0]
    try:
        found = session.get(f"{api}/repos/{slug}/pulls", params={"state": "open", "head": f"{owner}:{head}"},
                            timeout=15)
        _check(found, slug)
        if found.json():
            pr = found.json()[0]
            session.patch(f"{api}/repos/{slug}/pulls/{pr['number']}", json={"title": title, "body": body}, timeout=15)
            return pr["html_url"]
        created = session.post(f"{api}/repos/{slug}/pulls",
                               json={"title": title, "head": head, "base": base, "body": body}, timeout=15)
        _check(created, slug)
        return created.json()["html_url"]
    except requests.RequestException as exc:
        raise GitopsError(f"GitHub API at {api} unreachable for {slug}: {exc}", retryable=True) from None


def _check(resp, slug: str) -> None:
    if resp.status_code >= 400:
        raise GitopsError(f"GitHub API {resp.request.method} {resp.url} for {slug}: HTTP {resp.status_code} "
                          f"{resp.text[:300]}", retryable=resp.status_code >= 500)
