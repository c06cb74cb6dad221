"""A stand-in for GitHub's REST API (no GitHub here): pull requests of one repository and its branch protection.

It answers like https://api.github.com for the calls gitops-tool makes, through the loopback
RecordingServer of tests/mlflow_harness.py (GITHUB_API_URL points at it). Merging is not its job:
tests merge for real with git against the bare remote, then call ``close``.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlsplit

from tests.mlflow_harness import Recorded

JSON = {"Content-Type": "application/json"}


class GitHubStandIn:
    def __init__(self, slug: str = "acme/platform", *, login: str = "gitops-bot"):
        self.slug, self.login = slug, login
        self.pulls: dict[int, dict] = {}
        self.protection: dict | None = None   # GET .../branches/<b>/protection (None: 404 not protected)
        self.rules: list[dict] = []           # GET .../rules/branches/<b>
        self.fail_writes: int | None = None   # answer POST/PATCH with this status

    def open_pulls(self) -> list[dict]:
        return [p for p in self.pulls.values() if p["state"] == "open"]

    def close(self, number: int) -> None:
        """What GitHub does when the PR is merged (the merge itself was a real git operation)."""
        self.pulls[number]["state"] = "closed"

    def calls(self, recorded: list[Recorded]) -> list[tuple[str, str]]:
        return [(r.method, urlsplit(r.path).path) for r in recorded]

    def __call__(self, rec: Recorded) -> tuple[int, dict[str, str], bytes]:
        url = urlsplit(rec.path)
        query = parse_qs(url.query)
        base = f"/repos/{self.slug}"
        if rec.method in ("POST", "PATCH") and self.fail_writes:
            return self.fail_writes, JSON, b'{"message": "stand-in failure"}'
        if url.path == f"{base}/pulls" and rec.method == "GET":
            head = query.get("head", [""])[0].partition(":")[2]
            found = [p for p in self.open_pulls() if p["head"]["ref"] == head]
            return 200, JSON, json.dumps(found).encode()
        if url.path == f"{base}/pulls" and rec.method == "POST":
            body = json.loads(rec.body)
            if any(p["head"]["ref"] == body["head"] for p in self.open_pulls()):
                return 422, JSON, b'{"message": "Validation Failed: a pull request already exists"}'
            number = len(self.pulls) + 1
            self.pulls[number] = {"number": number, "state": "open", "title": body["title"], "body": body["body"],
                                  "html_url": f"https://github.com/{self.slug}/pull/{number}",
                                  "head": {"ref": body["head"]}, "base": {"ref": body["base"]}}
            return 201, JSON, json.dumps(self.pulls[number]).encode()
        if url.path.startswith(f"{base}/pulls/") and rec.method == "PATCH":
            pull = self.pulls.get(int(url.path.rsplit("/", 1)[1]))
            if pull is None:
                return 404, JSON, b'{"message": "Not Found"}'
            pull.update(json.loads(rec.body))
            return 200, JSON, json.dumps(pull).encode()
        if url.path.startswith(f"{base}/branches/") and url.path.endswith("/protection"):
            if self.protection is None:
                return 404, JSON, b'{"message": "Branch not protected"}'
            return 200, JSON, json.dumps(self.protection).encode()
        if url.path.startswith(f"{base}/rules/branches/"):
            return 200, JSON, json.dumps(self.rules).encode()
        if url.path == "/user":
            return 200, JSON, json.dumps({"login": self.login}).encode()
        return 404, JSON, b'{"message": "Not Found"}'
