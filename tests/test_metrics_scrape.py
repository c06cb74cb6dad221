"""Metrics you can trust: every metric and label the alerts and the dashboard read is exposed.

A real `mlflow server --expose-prometheus DIR` and a real webhook receiver (uvicorn on loopback)
get some traffic: REST calls to MLflow including a 404, signed deliveries to the receiver
including a forged one, a promotion that fails, and the receiver's periodic drift check against
a bare Git remote and the real registry. Then both /metrics are scraped and compared with the
names parsed out of the PromQL in gitops_tool.platform.monitoring.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
from dataclasses import replace
from importlib import resources
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from gitops_tool.config import load_config, load_config_text
from gitops_tool.errors import GitopsError
from gitops_tool.mlflow_local import LocalMlflowServer
from gitops_tool.platform import monitoring
from gitops_tool.registry.client import RegistryClient
from gitops_tool.webhook.app import WEBHOOK_PATH, create_app
from gitops_tool.webhook.jobs import Job, Outcome
from gitops_tool.webhook.server import _drift_monitor, running
from gitops_tool.webhook.settings import ReceiverSettings
from gitops_tool.webhook.signature import delivery_headers

SECRET = "scrape-secret"
MODEL = "wine-classifier"
SYNTHESIZED = {"up"}                          # Prometheus makes it per target; no exporter has it
TARGET_LABELS = {"job", "namespace", "instance", "le"}  # added by Prometheus (le: histogram buckets)

pytestmark = pytest.mark.slow


class PrometheusMlflow(LocalMlflowServer):
    """The project's local server plus --expose-prometheus (needs prometheus-flask-exporter)."""

    def command(self) -> list[str]:
        return [*super().command(), "--expose-prometheus", str(self.workdir / "prometheus")]


@pytest.fixture(scope="module")
def mlflow(tmp_path_factory):
    pytest.importorskip("prometheus_flask_exporter", reason="mlflow --expose-prometheus needs "
                                                            "prometheus-flask-exporter (mlflow[extras])")
    workdir = tmp_path_factory.mktemp("mlflow-prom")
    (workdir / "prometheus").mkdir()
    server = PrometheusMlflow(workdir).start(timeout=90)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def remote(tmp_path_factory) -> str:
    """A bare Git remote holding a fresh `init` tree: dev serves nothing yet."""
    from gitops_tool.project import init_project

    root = tmp_path_factory.mktemp("scrape-repo") / "platform"
    init_project(root)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "init"]):
        subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)
    bare = root.parent / "remote.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(root), str(bare)], check=True, capture_output=True)
    return bare.as_uri()


def _samples(text: str) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append(sample.labels)
    return found


def _mlflow_traffic(url: str) -> None:
    with RegistryClient(url) as client:
        client._request("POST", "/api/2.0/mlflow/registered-models/create", "create model", json={"name": MODEL})
        client._request("POST", "/api/2.0/mlflow/model-versions/create", "create version",
                        json={"name": MODEL, "source": "s3://mlflow-artifacts/1/models/m-1/artifacts"})
        client.set_alias(MODEL, "candidate", "1")   # dev maps candidate: Git has nothing -> drift
        assert client.get_model_aliases(MODEL) == {"candidate": "1"}
    missing = requests.get(f"{url}/api/2.0/mlflow/registered-models/get", params={"name": "no-such-model"},
                           timeout=10)
    assert missing.status_code == 404


def _delivery(alias: str, version: str) -> bytes:
    return json.dumps({"entity": "model_version_alias", "action": "created",
                       "timestamp": "2026-11-01T10:00:00+00:00",
                       "data": {"name": MODEL, "alias": alias, "version": version}}).encode()


def _handler(job: Job) -> Outcome:
    if job.env == "prod":
        raise GitopsError("push rejected by a hook (on purpose)")  # not retryable -> result="failed"
    return Outcome("committed", f"{job.model} -> {job.version}", commit="0" * 40)


@pytest.fixture(scope="module")
def scraped(mlflow, remote) -> dict[str, dict[str, list[dict]]]:
    _mlflow_traffic(mlflow.url)
    template = resources.files("gitops_tool.templates").joinpath("gitops.yaml").read_text()
    settings = ReceiverSettings(secrets=(SECRET,), config_path=Path("gitops.yaml"), host="127.0.0.1", port=0,
                                mode="promote", repo_url=remote, branch="main", tracking_uri=mlflow.url,
                                drift_interval=0.5, backoff=0.05, max_backoff=0.1)
    app = create_app(settings, _handler, load_config_text(template))
    drift = _drift_monitor(app, settings)   # the same wiring `webhook serve` uses
    assert drift is not None
    try:
        with running(app) as url:
            for body, secret in ((_delivery("candidate", "1"), SECRET), (_delivery("champion", "1"), SECRET),
                                 (_delivery("challenger", "1"), "forged-secret")):
                requests.post(url + WEBHOOK_PATH, data=body, headers=delivery_headers(secret, body), timeout=10)
            receiver = _wait_for(url, lambda s: "gitops_drift" in s and "gitops_alias_to_commit_seconds_count"
                                 in s and any(x.get("result") == "failed" for x in s.get("gitops_promotions_total",
                                                                                          [])))
    finally:
        drift.stop()
    return {"mlflow": _samples(requests.get(mlflow.url + "/metrics", timeout=10).text), "receiver": receiver}


def _wait_for(url: str, ready, timeout: float = 60.0) -> dict[str, list[dict]]:
    deadline = time.monotonic() + timeout
    while True:
        samples = _samples(requests.get(url + "/metrics", timeout=5).text)
        if ready(samples) or time.monotonic() > deadline:
            return samples
        time.sleep(0.2)


def _used_names(cfg) -> dict[str, set[str]]:
    exprs = monitoring.rule_queries() + monitoring.dashboard_queries(cfg)
    return {expr: monitoring.metric_names(expr) for expr in exprs}


def test_every_metric_in_rules_and_dashboard_is_exposed(scraped, remote):
    cfg = load_config(Path(__file__).resolve().parents[1] / "gitops.yaml")
    exposed = set(scraped["mlflow"]) | set(scraped["receiver"])
    missing = {expr: names - exposed - SYNTHESIZED for expr, names in _used_names(cfg).items()}
    assert {e: n for e, n in missing.items() if n} == {}
    used = set().union(*_used_names(cfg).values())
    assert len(used) >= 8  # the parser found the names, not nothing


def test_every_label_the_queries_group_or_match_on_is_exposed(scraped):
    cfg = load_config(Path(__file__).resolve().parents[1] / "gitops.yaml")
    labels = {k for source in scraped.values() for series in source.values() for s in series for k in s}
    used = set()
    for expr in monitoring.rule_queries() + monitoring.dashboard_queries(cfg):
        used |= set(re.findall(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)\s*\"", expr))
        for group in re.findall(r"\b(?:by|without)\s*\(([^)]*)\)", expr):
            used |= {g.strip() for g in group.split(",") if g.strip()}
    assert used - labels - TARGET_LABELS == set()


def test_traffic_shows_up_with_the_labels_alerts_use(scraped):
    mlflow, receiver = scraped["mlflow"], scraped["receiver"]
    statuses = {s["status"] for s in mlflow["mlflow_http_request_total"]}
    assert "404" in statuses and "200" in statuses
    assert {"method", "status"} <= set(mlflow["mlflow_http_request_total"][0])
    assert any("le" in s for s in mlflow["mlflow_http_request_duration_seconds_bucket"])
    outcomes = {s["outcome"] for s in receiver["gitops_webhook_deliveries_total"]}
    assert set(monitoring.REJECTED.split("|")) <= outcomes   # zero-initialised, so rate() works at once
    results = {(s["env"], s["result"]) for s in receiver["gitops_promotions_total"]}
    assert {("dev", "committed"), ("prod", "failed")} <= results
    drift = {(s["model"], s["env"], s["alias"]) for s in receiver["gitops_drift"]}
    assert (MODEL, "dev", "candidate") in drift


def test_drift_gauge_values_from_the_real_check(scraped, mlflow, remote):
    """candidate -> 1 in the registry, nothing in Git's dev: drift 1; challenger/champion unset: 0."""
    from prometheus_client import CollectorRegistry

    from gitops_tool.webhook.drift import DriftMonitor, clone_check

    registry = CollectorRegistry()
    monitor = DriftMonitor(registry, clone_check(remote, "main", mlflow.url))
    assert monitor.run_once()
    value = registry.get_sample_value
    assert value("gitops_drift", {"model": MODEL, "env": "dev", "alias": "candidate"}) == 1
    assert value("gitops_drift", {"model": MODEL, "env": "prod", "alias": "champion"}) == 0
    bad = DriftMonitor(CollectorRegistry(), clone_check(remote, "main", "http://127.0.0.1:9"))
    assert not bad.run_once()   # registry down: counted, not raised
