"""Fast sync: after the push, the promotion asks Argo CD to refresh the environment's Application.

Real parts: one `mlflow server` per module, bare Git remotes, the CLI as a subprocess, the real
kubernetes client and real HTTP. Stand-ins, because no Kubernetes API server or Argo CD runs here:
- a loopback recorder (tests/mlflow_harness.py RecordingServer) plays the Kubernetes API server
  of the cluster Argo CD runs on (found through a kubeconfig in tmp) and records the PATCH;
- the same recorder plays the Argo CD API server for `argocd.refresh: api`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

from tests.mlflow_harness import RecordingServer
from tests.promotion_fixtures import WINE, make_repo, registry, repo  # noqa: F401

pytestmark = pytest.mark.slow
APP = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/mlflow-platform-dev"


def _ok(res):
    assert res.returncode == 0, f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    return res


def kubeconfig(path: Path, url: str) -> str:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "standin",
        "clusters": [{"name": "standin", "cluster": {"server": url}}],
        "users": [{"name": "nobody", "user": {}}],
        "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "nobody"}}],
    }))
    return str(path)


def answer(status: int, body: dict):
    return lambda rec: (status, {"Content-Type": "application/json"}, json.dumps(body).encode())


def steps_of(res) -> dict[str, dict]:
    return {s["name"]: s for s in json.loads(res.stdout)["steps"]}


def test_annotation_refresh_patches_the_application_after_the_push(repo, registry, tmp_path):
    registry.set_alias("candidate", registry.v2)
    with RecordingServer(answer(200, {"kind": "Application", "metadata": {"name": "mlflow-platform-dev"}})) as api:
        env = repo.env(KUBECONFIG=kubeconfig(tmp_path / "kubeconfig", api.url))
        res = _ok(repo.promote(f"{WINE}@candidate", "-o", "json", env=env))
    step = steps_of(res)["argocd refresh"]
    assert step["status"] == "ok" and step["detail"] == (
        "annotated argocd/mlflow-platform-dev argocd.argoproj.io/refresh=normal")
    patches = [r for r in api.requests if r.method == "PATCH"]
    assert len(patches) == 1 and patches[0].path.split("?")[0] == APP
    assert patches[0].headers["Content-Type"] == "application/merge-patch+json"
    assert json.loads(patches[0].body) == {"metadata": {"annotations": {"argocd.argoproj.io/refresh": "normal"}}}
    assert json.loads(res.stdout)["commit"] == repo.remote_head()


def test_a_refused_refresh_never_fails_the_promotion(repo, registry, tmp_path):
    registry.set_alias("candidate", registry.v1)
    forbidden = {"kind": "Status", "status": "Failure", "reason": "Forbidden", "code": 403,
                 "message": "applications.argoproj.io is forbidden"}
    with RecordingServer(answer(403, forbidden)) as api:
        env = repo.env(KUBECONFIG=kubeconfig(tmp_path / "kubeconfig", api.url))
        res = _ok(repo.promote(f"{WINE}@candidate", "-o", "json", env=env))
    step = steps_of(res)["argocd refresh"]
    assert step["status"] == "failed" and "HTTP 403" in step["detail"]
    assert json.loads(res.stdout)["commit"] == repo.remote_head()
    assert "warning: argocd refresh failed: annotation: PATCH Application argocd/mlflow-platform-dev" in res.stderr
    assert steps_of(res)["record on version"]["status"] == "ok"  # the tag is written all the same


def test_api_refresh_gets_the_application_with_refresh_normal_and_the_token(tmp_path, registry):
    with RecordingServer(answer(200, {"metadata": {"name": "mlflow-platform-dev"}})) as argocd:
        repo = make_repo(tmp_path, registry.url, edit_config=lambda t: t.replace(
            "argocd:\n", f"argocd:\n  refresh: api\n  api_url: {argocd.url}\n", 1))
        registry.set_alias("candidate", registry.v2)
        env = repo.env(ARGOCD_AUTH_TOKEN="test-token-not-a-secret")
        res = _ok(repo.promote(f"{WINE}@candidate", "-o", "json", env=env))
    assert steps_of(res)["argocd refresh"]["status"] == "ok"
    (call,) = argocd.requests
    url = urlsplit(call.path)
    assert (call.method, url.path) == ("GET", "/api/v1/applications/mlflow-platform-dev")
    assert parse_qs(url.query) == {"refresh": ["normal"], "appNamespace": ["argocd"]}
    assert call.headers["Authorization"] == "Bearer test-token-not-a-secret"


def test_api_mode_without_token_fails_the_step_only_and_without_url_is_a_config_error(tmp_path, registry):
    repo = make_repo(tmp_path, registry.url, edit_config=lambda t: t.replace(
        "argocd:\n", "argocd:\n  refresh: api\n  api_url: http://127.0.0.1:9\n", 1))
    registry.set_alias("candidate", registry.v1)
    res = _ok(repo.promote(f"{WINE}@candidate", "-o", "json", env=repo.env()))
    step = steps_of(res)["argocd refresh"]
    assert step["status"] == "failed" and "$ARGOCD_AUTH_TOKEN" in step["detail"]

    cfg = repo.root / "gitops.yaml"
    cfg.write_text(cfg.read_text().replace("  api_url: http://127.0.0.1:9\n", ""))
    before = repo.snapshot()[1]
    res = repo.promote(f"{WINE}/{registry.v2}", "--env", "dev", env=repo.env())
    assert res.returncode == 1 and "argocd.refresh: api needs argocd.api_url" in res.stderr
    assert repo.remote_head() == before


def test_none_skips_and_no_kubeconfig_skips(tmp_path, registry):
    repo = make_repo(tmp_path, registry.url, edit_config=lambda t: t.replace("argocd:\n", "argocd:\n  refresh: none\n", 1))
    registry.set_alias("candidate", registry.v2)
    res = _ok(repo.promote(f"{WINE}@candidate", "-o", "json", env=repo.env()))
    assert steps_of(res)["argocd refresh"] == {**steps_of(res)["argocd refresh"], "status": "skipped",
                                               "detail": "argocd.refresh: none"}


def test_the_receiver_refreshes_and_tags_through_the_same_engine_path(repo, registry, tmp_path, monkeypatch):
    """The real receiver app (uvicorn on loopback, promote mode, real engine) gets a signed delivery:
    it commits, PATCHes the Application on the Kubernetes API stand-in, tags the version, and its
    /metrics count the refresh and the tag write."""
    import time

    import requests
    from prometheus_client.parser import text_string_to_metric_families

    from gitops_tool.webhook.app import WEBHOOK_PATH, create_app
    from gitops_tool.webhook.handlers import build_handler
    from gitops_tool.webhook.server import running
    from gitops_tool.webhook.settings import ReceiverSettings
    from gitops_tool.webhook.signature import delivery_headers

    def metrics(url: str) -> dict[str, float]:
        text = requests.get(url + "/metrics", timeout=5).text
        return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}

    with RecordingServer(answer(200, {"kind": "Application", "metadata": {"name": "mlflow-platform-dev"}})) as api:
        monkeypatch.setenv("KUBECONFIG", kubeconfig(tmp_path / "kubeconfig", api.url))
        settings = ReceiverSettings(secrets=("test-secret",), config_path=repo.root / "gitops.yaml", host="127.0.0.1",
                                    port=0, mode="promote", repo_url=str(repo.remote), tracking_uri=registry.url,
                                    drift_interval=0)
        with running(create_app(settings, build_handler(settings))) as url:
            before, seen = repo.remote_head(), metrics(url)
            registry.set_alias("candidate", registry.v2)
            body = json.dumps({"entity": "model_version_alias", "action": "created",
                               "timestamp": "2026-12-03T10:00:00+00:00",
                               "data": {"name": WINE, "alias": "candidate", "version": registry.v2}}).encode()
            resp = requests.post(url + WEBHOOK_PATH, data=body, headers=delivery_headers("test-secret", body),
                                 timeout=10)
            assert resp.status_code == 202, resp.text
            deadline = time.monotonic() + 60
            while metrics(url).get("gitops_version_tag_writes_total", 0) <= seen.get("gitops_version_tag_writes_total",
                                                                                      0):
                assert time.monotonic() < deadline, "the receiver's job did not finish"
                time.sleep(0.1)
            after = metrics(url)
    assert repo.remote_head() != before
    assert after["gitops_argocd_refresh_requests_total"] == seen["gitops_argocd_refresh_requests_total"] + 1
    assert after["gitops_argocd_refresh_failures_total"] == seen["gitops_argocd_refresh_failures_total"]
    assert [r.method for r in api.requests] == ["PATCH"] and api.requests[0].path.split("?")[0] == APP
    tags = {t["key"]: t["value"] for t in registry.get_version(registry.v2)["tags"]}
    recorded = json.loads(tags["gitops.dev"])
    assert (recorded["state"], recorded["trigger"], recorded["commit"]) == ("committed", "webhook", repo.remote_head())
    from datetime import datetime, timezone

    alias_at = datetime.strptime(recorded["alias_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert abs(time.time() - alias_at.timestamp()) < 120  # the delivery's X-MLflow-Timestamp
