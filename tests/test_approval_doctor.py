"""`doctor --approval`: GitHub's branch protection and the registry's auth, and which MLflow permission moves an alias.

Real parts: `mlflow server` without auth and `mlflow server --app-name basic-auth` (users, per-model
permissions, alias moves over REST), the CLI as a subprocess. Stand-in, because GitHub cannot run here:
GitHub's REST API (branch protection, rulesets, /user) is played by tests/github_standin.py behind a
loopback RecordingServer (GITHUB_API_URL).
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
import requests

from gitops_tool.mlflow_local import LocalMlflowServer
from gitops_tool.project import starter_text
from tests.conftest import run_cli
from tests.github_standin import GitHubStandIn
from tests.mlflow_harness import RecordingServer, mlflow_server_for
from tests.promotion_fixtures import base_env

pytestmark = pytest.mark.slow

SLUG = "example-org/mlflow-gitops"  # the starter's repo.url
API = "/api/2.0/mlflow"
GOOD = {"required_pull_request_reviews": {"required_approving_review_count": 1, "dismiss_stale_reviews": True,
                                          "bypass_pull_request_allowances": {"users": [], "teams": [], "apps": []}},
        "enforce_admins": {"enabled": True}}


class BasicAuthMlflow(LocalMlflowServer):
    """`mlflow server --app-name basic-auth`: MLflow's own users and per-model permissions."""

    admin_password = secrets.token_urlsafe(16)

    def command(self) -> list[str]:
        return [*super().command(), "--app-name", "basic-auth"]

    def environment(self) -> dict[str, str]:
        ini = self.workdir / "basic_auth.ini"
        ini.write_text("[mlflow]\ndefault_permission = READ\n"
                       f"database_uri = sqlite:///{self.workdir / 'auth.db'}\n"
                       "admin_username = admin\n"
                       "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n")
        return super().environment() | {"MLFLOW_AUTH_CONFIG_PATH": str(ini),
                                        "MLFLOW_FLASK_SERVER_SECRET_KEY": secrets.token_hex(16),
                                        "MLFLOW_AUTH_ADMIN_PASSWORD": self.admin_password}


@pytest.fixture(scope="module")
def plain_mlflow(tmp_path_factory):
    with mlflow_server_for(tmp_path_factory, "mlflow-plain") as server:
        yield server


@pytest.fixture(scope="module")
def auth_mlflow(tmp_path_factory):
    server = BasicAuthMlflow(tmp_path_factory.mktemp("mlflow-auth"))
    server.start(timeout=120)
    try:
        yield server
    finally:
        server.stop()


def _project(tmp_path: Path, text: str | None = None) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "gitops.yaml").write_text(text or starter_text())
    return tmp_path / "gitops.yaml"


def _doctor(config: Path, github_url: str, uri: str, **env: str):
    res = run_cli("doctor", "--approval", "--config", str(config), "--tracking-uri", uri, "-o", "json",
                  env=base_env(GITHUB_API_URL=github_url, GITHUB_TOKEN="t0ken", **env))
    return res, json.loads(res.stdout) if res.stdout.strip().startswith("{") else None


def _by_what(report: dict) -> dict[str, dict]:
    return {f["what"]: f for f in report["findings"]}


def test_protection_that_requires_review_without_bot_bypass_passes(tmp_path, plain_mlflow):
    standin = GitHubStandIn(SLUG)
    standin.protection = GOOD
    with RecordingServer(standin) as gh:
        res, report = _doctor(_project(tmp_path), gh.url, plain_mlflow.url)
    assert res.returncode == 0, res.stderr
    found = _by_what(report)
    assert found["required review"]["status"] == "ok" and "1 approving review" in found["required review"]["detail"]
    assert found["bot bypass"]["status"] == "ok" and "gitops-bot" in found["bot bypass"]["detail"]
    # dev and staging push to the same branch: the report says the rule refuses them, as a note.
    assert found["direct environments"]["status"] == "note" and "dev, staging" in found["direct environments"]["detail"]
    # this MLflow runs without auth: said as a note, not a failure.
    assert found["registry auth"]["status"] == "note" and "has no auth" in found["registry auth"]["detail"]
    assert any("Require a pull request before merging" in line for line in report["settings"])
    assert any("EDIT on the registered model" in line for line in report["settings"])
    paths = [p for p, in ((r.path.split("?")[0],) for r in gh.requests)]
    assert f"/repos/{SLUG}/branches/main/protection" in paths and "/user" in paths


def test_a_bot_that_may_bypass_or_no_protection_at_all_fails(tmp_path, plain_mlflow):
    every_env_reviewed = starter_text()
    for env in ("dev", "staging"):
        every_env_reviewed = every_env_reviewed.replace(f"    namespace: models-{env}\n",
                                                        f"    namespace: models-{env}\n    approval: pull_request\n")
    standin = GitHubStandIn(SLUG)
    standin.protection = json.loads(json.dumps(GOOD))
    standin.protection["required_pull_request_reviews"]["bypass_pull_request_allowances"]["apps"] = [
        {"slug": "github-actions"}]
    standin.protection["enforce_admins"] = {"enabled": False}
    with RecordingServer(standin) as gh:
        res, report = _doctor(_project(tmp_path / "a", every_env_reviewed), gh.url, plain_mlflow.url)
        assert res.returncode == 1
        found = _by_what(report)
        assert found["bot bypass"]["status"] == "problem" and "github-actions" in found["bot bypass"]["detail"]
        assert found["admins"]["status"] == "problem"

        standin.protection = None  # 404 Branch not protected, and no ruleset either
        res, report = _doctor(_project(tmp_path / "b"), gh.url, plain_mlflow.url)
        assert res.returncode == 1
        assert "no branch protection and no ruleset" in _by_what(report)["review required on main"]["detail"]

        standin.rules = [{"type": "pull_request", "parameters": {"required_approving_review_count": 2}}]
        res, report = _doctor(_project(tmp_path / "c"), gh.url, plain_mlflow.url)
        assert res.returncode == 0
        assert _by_what(report)["review required on main"]["status"] == "ok"
        assert _by_what(report)["bypass"]["status"] == "unknown"


def test_github_unreachable_is_unknown_not_a_crash(tmp_path, plain_mlflow):
    res, report = _doctor(_project(tmp_path), "http://127.0.0.1:9", plain_mlflow.url)
    assert res.returncode == 0, res.stderr
    assert _by_what(report)["review required on main"]["status"] == "unknown"


def test_basic_auth_edit_moves_an_alias_manage_deletes_it_read_does_neither(tmp_path, auth_mlflow):
    """What docs/approval.md says about MLflow permissions, checked on a real basic-auth server."""
    url, admin = auth_mlflow.url, ("admin", auth_mlflow.admin_password)

    def call(method: str, path: str, auth, api: int = 2, **body):
        where = {"params": body} if method == "GET" else {"json": body}
        return requests.request(method, f"{url}/api/{api}.0/mlflow/{path}", auth=auth, timeout=30, **where)

    assert call("POST", "registered-models/create", admin, name="wine").ok
    created = call("POST", "model-versions/create", admin, name="wine", source="s3://bucket/wine/1")
    assert created.ok, created.text
    users = {}
    for name in ("editor", "manager", "reader"):
        users[name] = (name, secrets.token_urlsafe(12))
        assert call("POST", "users/create", admin, username=name, password=users[name][1]).ok
    for name, permission in (("editor", "EDIT"), ("manager", "MANAGE")):
        granted = call("POST", "users/permissions/grant", admin, api=3, username=name,
                       resource_type="registered_model", resource_id="wine", permission=permission)
        assert granted.ok, granted.text

    def set_alias(who):
        return call("POST", "registered-models/alias", users[who], name="wine", alias="champion", version="1")

    def delete_alias(who):
        return call("DELETE", "registered-models/alias", users[who], name="wine", alias="champion")

    assert set_alias("reader").status_code == 403
    assert set_alias("editor").status_code == 200
    assert delete_alias("editor").status_code == 403
    assert delete_alias("reader").status_code == 403
    assert set_alias("manager").status_code == 200 and delete_alias("manager").status_code == 200

    # What the registry records about who made a version (the Version-Created-By trailer reads it).
    version = call("GET", "model-versions/get", admin, name="wine", version="1").json()["model_version"]
    print("user_id of a version made by admin:", repr(version.get("user_id")))

    standin = GitHubStandIn(SLUG)
    standin.protection = GOOD
    with RecordingServer(standin) as gh:
        res, report = _doctor(_project(tmp_path), gh.url, url, MLFLOW_TRACKING_USERNAME="reader",
                              MLFLOW_TRACKING_PASSWORD=users["reader"][1])
    assert res.returncode == 0, res.stderr
    auth = _by_what(report)["registry auth"]
    assert auth["status"] == "ok" and "basic-auth" in auth["detail"], auth
