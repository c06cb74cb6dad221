"""Who may deploy: `environments.<env>.approval` (direct | pull_request) and `production`.

An environment named `prod` or `production`, or one marked `production: true`, is a production
environment; its approval defaults to `pull_request`: every promotion into it (webhook, reconcile,
workflow, CLI) becomes a pull request a person must merge. Other environments default to `direct`.
A pull request needs a GitHub repository: `repo.github_repository`, or a github.com `repo.url`.
"""

from __future__ import annotations

import re
from typing import Callable

from gitops_tool.errors import GitopsError

APPROVALS = ("direct", "pull_request")
PRODUCTION_NAMES = ("prod", "production")
_GITHUB_URL = re.compile(r"github\.com[:/](?P<slug>[^/\s]+/[^/\s]+?)(?:\.git)?/?$")


def github_repository(repo: dict) -> str | None:
    """owner/name of the GitHub repository behind repo.url, or None when it is not on GitHub."""
    if repo.get("github_repository"):
        return repo["github_repository"]
    match = _GITHUB_URL.search(str(repo.get("url", "")))
    return match["slug"] if match else None


def approval_of(name: str, spec: dict, repo: dict, where: Callable[[list], str]) -> tuple[bool, str]:
    """(production, approval) of one environment, refusing what cannot work at load."""
    path = ["environments", name]
    production = bool(spec.get("production", name in PRODUCTION_NAMES))
    approval = spec.get("approval", "pull_request" if production else "direct")
    if approval not in APPROVALS:
        raise GitopsError(f"{where(path + ['approval'])}: {approval!r} is not an approval; use one of "
                          f"{', '.join(APPROVALS)}")
    if approval == "pull_request" and not github_repository(repo):
        why = ("" if "approval" in spec else
               f" (the default for a production environment{'' if 'production' in spec else f' named {name}'})")
        raise GitopsError(
            f"{where(path + (['approval'] if 'approval' in spec else []))}: approval pull_request{why} opens "
            f"GitHub pull requests, but repo.url {repo.get('url')!r} is not a GitHub repository; set "
            f"repo.github_repository: owner/name, or approval: direct to let promotions into {name} land "
            f"without review")
    return production, approval
