"""`wait` reports alias -> committed -> synced -> ready and writes synced/healthy on the version.

Real parts: one `mlflow server` with two trained wine versions, a bare Git remote, the promotion
engine run as the receiver runs it (trigger webhook, with the delivery's timestamp), the real
kubernetes client over real HTTP. Stand-in: tests/test_cluster_status.py's loopback Kubernetes API
server (FakeApiServer) answers for the cluster Argo CD runs on, with the JSON in
tests/fixtures/cluster/ (no Argo CD or KServe here).
"""

from __future__ import annotations

import json
import time

import pytest
import yaml

from gitops_tool.cli import cluster_commands
from gitops_tool.promotion.engine import promote
from gitops_tool.promotion.model import PromotionRequest
from tests.promotion_fixtures import WINE, registry, repo  # noqa: F401
from tests.test_cluster_status import APP_PATH, ISVC_PATH, FakeApiServer, api, app, isvc  # noqa: F401

pytestmark = pytest.mark.slow


def test_wait_reports_each_stage_and_tags_synced_then_healthy(repo, registry, api, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.url)
    registry.set_alias("candidate", registry.v2)
    moved = time.time()
    result = promote(PromotionRequest(ref=f"{WINE}@candidate", trigger="webhook", delivery_id="d-1",
                                      event_version=registry.v2, event_timestamp=moved,
                                      config_path=repo.root / "gitops.yaml"))
    assert result.pushed and repo.head() == result.commit  # the user's checkout was fast-forwarded
    refresh = next(s for s in result.steps if s.name == "argocd refresh")
    assert refresh.status == "failed" and "501" in refresh.detail  # this stand-in answers GETs only

    commit = result.commit
    api.set(APP_PATH.format(env="dev"), app("progressing", commit), app("progressing", commit),
            app("synced-healthy", commit))
    api.set(ISVC_PATH.format(env="dev"), isvc("not-ready", registry.v2), isvc("ready", registry.v2))
    code = cluster_commands.wait(env="dev", model=None, version=None, timeout=10, interval=0.2,
                                 config=str(repo.root / "gitops.yaml"), context=None, kubeconfig=None,
                                 output="json")
    assert code == 0
    report = json.loads(capsys.readouterr().out)
    times, seconds = report["times"], report["times"]["seconds"]
    assert all(times[k] for k in ("alias", "committed", "synced", "ready"))
    assert 0 < seconds["alias_to_committed"] < 60
    assert seconds["committed_to_synced"] >= 0 and seconds["synced_to_ready"] >= 0.2  # one poll apart at least

    recorded = json.loads(next(t["value"] for t in registry.get_version(registry.v2)["tags"]
                               if t["key"] == "gitops.dev"))
    assert recorded["state"] == "healthy" and recorded["commit"] == commit
    assert (recorded["alias_at"], recorded["synced_at"], recorded["ready_at"]) == (
        times["alias"], times["synced"], times["ready"])


def test_wait_text_line_without_a_registry(repo, tmp_path, monkeypatch, capsys):
    """No reachable registry: the times it can know, a warning, no failure."""
    fake = FakeApiServer()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:9")
    with fake.running() as url:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "s",
            "clusters": [{"name": "s", "cluster": {"server": url}}], "users": [{"name": "u", "user": {}}],
            "contexts": [{"name": "s", "context": {"cluster": "s", "user": "u"}}]}))
        from tests.conftest import write_release

        write_release(repo.root, "dev", "1", image="registry.example.com/ml/wine-classifier:v1")
        commit = repo.commit_and_push("promote by hand", "environments/dev")
        fake.set(APP_PATH.format(env="dev"), app("synced-healthy", commit))
        fake.set(ISVC_PATH.format(env="dev"), isvc("ready", "1"))
        code = cluster_commands.wait(env="dev", model=None, version=None, timeout=5, interval=0.1,
                                     config=str(repo.root / "gitops.yaml"), context=None,
                                     kubeconfig=str(kubeconfig), output="text")
    captured = capsys.readouterr()
    assert code == 0
    assert "alias -> committed ? -> synced" in captured.out and "-> ready 0.0s" in captured.out
    assert "warning: registry:" in captured.err and "no synced/healthy tags" in captured.err
