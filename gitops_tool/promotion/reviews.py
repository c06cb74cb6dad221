"""`status`: which promotions wait for review (an open pull request of an approval: pull_request environment).

Asks the GitHub API for the open pull request of each (model, environment) branch. When GitHub cannot
answer, the rows say the review state is unknown and status goes on: Git's tip and the registry are
still the truth for everything else.
"""

from __future__ import annotations

import os

from gitops_tool.config import Config
from gitops_tool.errors import GitopsError
from gitops_tool.promotion.github_api import GitHub, repo_slug
from gitops_tool.promotion.pull_request import pr_branch
from gitops_tool.promotion.status import EnvStatus

PENDING = "pending review"
UNKNOWN = "review state unknown"


def mark_pending_reviews(cfg: Config, rows: list[EnvStatus]) -> str | None:
    """Set ``row.review`` on rows of pull_request environments; the problem when GitHub did not answer."""
    wanted = [r for r in rows if cfg.environments[r.env].approval == "pull_request"]
    if not wanted:
        return None
    try:
        github = GitHub(repo_slug(cfg), os.environ.get("GITHUB_TOKEN"), timeout=5)
    except GitopsError as exc:
        problem = str(exc).splitlines()[0]
    else:
        problem = None
    for row in wanted:
        if problem is None:
            try:
                pull = github.open_pull(pr_branch(row.env, row.model))
            except GitopsError as exc:
                problem = str(exc).splitlines()[0]
            else:
                row.review = f"{PENDING}: {pull.get('html_url')} (version {_version(pull)})" if pull else None
                continue
        row.review = UNKNOWN
    return problem


def _version(pull: dict) -> str:
    """The version the PR deploys, from its title `promote(env): model A -> B (@alias)`."""
    title = str(pull.get("title") or "")
    after = title.split(" -> ", 1)[1] if " -> " in title else "?"
    return after.split()[0] if after.split() else "?"
