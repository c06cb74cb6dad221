"""The few GitHub REST calls approval needs: pull requests of one branch, and the branch's protection.

`GITHUB_API_URL` (default https://api.github.com; Actions sets it, GitHub Enterprise differs) and
`GITHUB_TOKEN`. An unreachable API, a 5xx or a 429 is retryable; other answers are not.
"""

from __future__ import annotations

import os
import re
from typing import Any

from gitops_tool.config import Config
from gitops_tool.errors import GitopsError

_GITHUB_URL = re.compile(r"github\.com[:/](?P<slug>[^/]+/[^/]+?)(?:\.git)?/?$")
_RETRY = {429, 500, 502, 503, 504}


def repo_slug(cfg: Config) -> str:
    """owner/name: repo.github_repository (or a github.com repo.url), else $GITHUB_REPOSITORY."""
    if cfg.github_repository:
        return cfg.github_repository
    if slug := os.environ.get("GITHUB_REPOSITORY"):
        return slug
    if match := _GITHUB_URL.search(cfg.repo_url):
        return match["slug"]
    raise GitopsError(f"{cfg.source}: cannot tell the GitHub owner/repo from repo.url {cfg.repo_url!r}",
                      hint="set repo.github_repository: owner/name (or GITHUB_REPOSITORY=owner/name)")


class GitHub:
    def __init__(self, slug: str, token: str | None = None, *, timeout: float = 15.0):
        import requests

        self.slug, self.timeout = slug, timeout
        self.api = os.environ.get("GITHUB_API_URL", "https://api.github.com").rstrip("/")
        self.session = requests.Session()
        self.session.headers.update({"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"})
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def _call(self, method: str, path: str, *, ok_404: bool = False, **kw: Any) -> Any:
        import requests

        url = f"{self.api}{path}"
        try:
            resp = self.session.request(method, url, timeout=self.timeout, **kw)
        except requests.RequestException as exc:
            raise GitopsError(f"GitHub API at {self.api} unreachable for {self.slug}: {exc}", retryable=True) from None
        if resp.status_code == 404 and ok_404:
            return None
        if resp.status_code >= 400:
            raise GitopsError(f"GitHub API {method} {url} for {self.slug}: HTTP {resp.status_code} {resp.text[:300]}",
                              retryable=resp.status_code in _RETRY)
        return resp.json() if resp.content else {}

    def open_pull(self, branch: str) -> dict | None:
        """The open pull request whose head is ``branch`` of this repository, if any."""
        owner = self.slug.split("/")[0]
        found = self._call("GET", f"/repos/{self.slug}/pulls", params={"state": "open", "head": f"{owner}:{branch}"})
        return found[0] if found else None

    def create_pull(self, head: str, base: str, title: str, body: str) -> dict:
        return self._call("POST", f"/repos/{self.slug}/pulls", json={"title": title, "head": head, "base": base,
                                                                     "body": body})

    def update_pull(self, number: int, title: str, body: str) -> dict:
        return self._call("PATCH", f"/repos/{self.slug}/pulls/{number}", json={"title": title, "body": body})

    def close_pull(self, number: int, body: str) -> dict:
        return self._call("PATCH", f"/repos/{self.slug}/pulls/{number}", json={"state": "closed", "body": body})

    def branch_protection(self, branch: str) -> dict | None:
        """Classic branch protection of ``branch``; None when it has none."""
        return self._call("GET", f"/repos/{self.slug}/branches/{branch}/protection", ok_404=True)

    def branch_rules(self, branch: str) -> list[dict]:
        """The active ruleset rules that apply to ``branch`` (repository rulesets, not classic protection)."""
        return self._call("GET", f"/repos/{self.slug}/rules/branches/{branch}", ok_404=True) or []

    def token_login(self) -> str | None:
        """Who the token acts as (a user or bot login); None for an installation token (/user refuses it)."""
        try:
            return (self._call("GET", "/user") or {}).get("login")
        except GitopsError as exc:
            if exc.retryable:
                raise
            return None
