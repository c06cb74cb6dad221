"""Monitoring manifests: monitor selectors against the rendered Services, the PrometheusRule with the
real `promtool` (check + unit tests), the Grafana dashboard ConfigMap, the drift gauge."""

from __future__ import annotations

import json
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from gitops_tool.config import load_config

from gitops_tool.platform import monitoring
from gitops_tool.project import generate, init_project
from tests.conftest import find, render_docs, write_release

IMAGE = "registry.example.com/ml/wine-classifier@sha256:" + "c" * 64
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (Debian package "
                                                              "`prometheus`: apt-get install -y prometheus)")


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("monitoring") / "platform"
    init_project(root)
    write_release(root, "prod", "4", image=IMAGE)
    return root


@pytest.fixture(scope="module")
def prod(platform: Path) -> list[dict]:
    """The prod serving overlay (its own Argo CD Application, on the prod cluster)."""
    return render_docs(platform / "environments/prod")


@pytest.fixture(scope="module")
def main(platform: Path) -> list[dict]:
    """The registry-of-record platform overlay: MLflow, the receiver and their monitoring."""
    return render_docs(platform / "environments/platform/main")


@pytest.fixture(scope="module")
def storage_platform(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("monitoring-storage") / "platform"
    init_project(root)
    config = root / "gitops.yaml"
    # prod moves in-cluster: storage-mode predictors there must reach the platform's in-cluster MinIO
    config.write_text(config.read_text().replace("    mode: image\n", "    mode: storage\n")
                      .replace("    cluster: prod\n", "    cluster: in-cluster\n"))
    generate(config)
    write_release(root, "dev", "3", storage_uri="s3://mlflow-artifacts/1/models/m-abc/artifacts")
    return root


def _matches(selector: dict, labels: dict) -> bool:
    for key, value in selector.get("matchLabels", {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions", []):
        op, key = expr["operator"], expr["key"]
        if (op == "Exists" and key not in labels) or (op == "In" and labels.get(key) not in expr["values"]):
            return False
        if op in ("DoesNotExist", "NotIn"):
            raise AssertionError(f"operator {op} not handled by this test")
    return True


def _selected(docs: list[dict], monitor: dict) -> list[dict]:
    return [d for d in docs if d["kind"] == "Service" and
            _matches(monitor["spec"]["selector"], d["metadata"].get("labels", {}))]


@pytest.mark.parametrize("monitor_name, service", [("mlflow", "mlflow"), ("gitops-webhook", "gitops-webhook")])
def test_service_monitor_selects_exactly_its_service_and_port(main, monitor_name, service):
    monitor = find(main, "ServiceMonitor", monitor_name)
    assert monitor["metadata"]["namespace"] == "mlflow"
    selected = _selected(main, monitor)
    assert [s["metadata"]["name"] for s in selected] == [service]
    port_names = {p["name"] for p in selected[0]["spec"]["ports"]}
    assert {e["port"] for e in monitor["spec"]["endpoints"]} <= port_names
    # The job label Prometheus gives these targets is the Service name: what the alerts filter on.
    assert service in (monitoring.MLFLOW_JOB, monitoring.RECEIVER_JOB)
    # ...and the Service's port reaches the container port that serves /metrics.
    deploy = find(main, "Deployment", service)
    container_ports = {p["name"] for c in deploy["spec"]["template"]["spec"]["containers"] for p in c["ports"]}
    assert {p["targetPort"] for p in selected[0]["spec"]["ports"]} <= container_ports


def test_image_mode_has_no_kserve_monitor(prod):
    """The mlflow pyfunc image serves /invocations only: nothing to scrape."""
    assert not [d for d in prod if d["kind"] == "PodMonitor"]
    assert find(prod, "InferenceService", "wine-classifier")


def test_platform_monitoring_stays_with_the_platform(platform, main):
    """MLflow's and the receiver's monitors, alerts and dashboard live once, next to MLflow; no serving
    environment carries them (their Services are not there to select)."""
    def monitoring_docs(docs):
        return sorted((d["kind"], d["metadata"]["name"]) for d in docs if d["kind"] in ("ServiceMonitor", "PrometheusRule")
                      or d["metadata"].get("labels", {}).get("grafana_dashboard") == "1")

    assert monitoring_docs(main) == [
        ("ConfigMap", "gitops-tool-dashboard"), ("PrometheusRule", "gitops-tool"),
        ("PrometheusRule", "gitops-tool-receiver"), ("ServiceMonitor", "gitops-webhook"), ("ServiceMonitor", "mlflow")]
    for env in ("dev", "staging", "prod"):
        docs = render_docs(platform / "environments" / env)
        assert monitoring_docs(docs) == [], env


def test_storage_mode_pod_monitor_selects_the_predictor_pods(storage_platform, schema_dir):
    docs = render_docs(storage_platform / "environments/dev")
    monitor = find(docs, "PodMonitor", "kserve-mlserver")
    assert monitor["metadata"]["namespace"] == "models-dev"
    # predictors run only in serving environments: the platform overlay has nothing to scrape there
    assert not [d for d in render_docs(storage_platform / "environments/platform/main") if d["kind"] == "PodMonitor"]
    isvc = find(docs, "InferenceService", "wine-classifier")
    # KServe labels every predictor pod serving.kserve.io/inferenceservice=<isvc name>.
    pod_labels = {monitoring.ISVC_LABEL: isvc["metadata"]["name"], "component": "predictor"}
    assert _matches(monitor["spec"]["selector"], pod_labels)
    assert not _matches(monitor["spec"]["selector"], {monitoring.ISVC_LABEL: "some-other-model"})
    assert not _matches(monitor["spec"]["selector"], {"app.kubernetes.io/name": "mlflow"})
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    assert endpoint["path"] == "/metrics"
    assert any(r.get("replacement") == "$1:8082" and r["targetLabel"] == "__address__"
               for r in endpoint["relabelings"])
    # relabelings share the ServiceMonitor's schema (PodMonitor has none in ../shared/schemas).
    import jsonschema

    sm = json.loads((schema_dir / "monitoring.coreos.com/servicemonitor_v1.json").read_text())
    relabel = sm["properties"]["spec"]["properties"]["endpoints"]["items"]["properties"]["relabelings"]
    jsonschema.validate(endpoint["relabelings"], relabel)
    policy = find(docs, "NetworkPolicy", "serving-metrics-from-monitoring")
    assert _matches(policy["spec"]["podSelector"], pod_labels)
    assert policy["spec"]["ingress"][0]["ports"] == [{"protocol": "TCP", "port": 8082}]


# --- PrometheusRule ---------------------------------------------------------------------------

def _groups(docs: list[dict]) -> list[dict]:
    """The registry of record's alert groups: MLflow's, and the receiver component's."""
    return [g for name in ("gitops-tool", "gitops-tool-receiver") for g in find(docs, "PrometheusRule", name)["spec"]["groups"]]


def _rule_file(docs: list[dict], tmp_path: Path) -> Path:
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"groups": _groups(docs)}, sort_keys=False))
    return path


def test_rule_alerts_cover_the_brief(main):
    rule = find(main, "PrometheusRule", "gitops-tool")
    assert rule["metadata"]["namespace"] == "mlflow"
    alerts = {r["alert"]: r for g in _groups(main) for r in g["rules"]}
    assert {"MLflowHighErrorRate", "MLflowHighLatency", "MLflowDown", "WebhookReceiverDown",
            "WebhookDeliveriesRejected", "PromotionFailed", "RegistryGitDrift"} <= set(alerts)
    assert 'up{job="mlflow"}' in alerts["MLflowDown"]["expr"]
    assert 'up{job="gitops-webhook"}' in alerts["WebhookReceiverDown"]["expr"]
    assert "histogram_quantile(0.95" in alerts["MLflowHighLatency"]["expr"]
    assert alerts["RegistryGitDrift"]["for"] == monitoring.DRIFT_FOR
    for alert in alerts.values():
        assert alert["labels"]["severity"] in ("warning", "critical")
        assert alert["annotations"]["summary"]


def test_only_the_registry_of_record_alerts_on_the_receiver(tmp_path):
    """A second platform instance (an MLflow upgrade rehearsal) runs no receiver: absent() would fire forever."""
    root = tmp_path / "platform"
    init_project(root)
    config = root / "gitops.yaml"
    config.write_text(config.read_text().replace("\n# Serving environments:", (
        "    staging:\n      namespace: mlflow-staging\n      cluster: prod\n      host: mlflow-staging.example.com\n"
        "      secrets: {method: external, store: platform-secrets, remote_prefix: mlflow/staging}\n"
        "\n# Serving environments:"), 1))
    generate(config)
    staging = render_docs(root / "environments/platform/staging")
    assert not [d for d in staging if d["metadata"]["name"] == "gitops-webhook"]  # no receiver here
    alerts = {r["alert"] for g in find(staging, "PrometheusRule", "gitops-tool")["spec"]["groups"] for r in g["rules"]}
    assert "MLflowDown" in alerts
    assert not {a for a in alerts if a.startswith("Webhook") or a in ("PromotionFailed", "RegistryGitDrift")}
    assert not [d for d in staging if d["kind"] == "PrometheusRule" and d["metadata"]["name"] == "gitops-tool-receiver"]
    main = render_docs(root / "environments/platform/main")
    receiver = {r["alert"] for g in find(main, "PrometheusRule", "gitops-tool-receiver")["spec"]["groups"]
                for r in g["rules"]}
    assert "WebhookReceiverMetricsAbsent" in receiver or any(a.startswith("Webhook") for a in receiver)

@needs_promtool
def test_promtool_check_rules(main, tmp_path):
    res = subprocess.run([PROMTOOL, "check", "rules", str(_rule_file(main, tmp_path))],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "SUCCESS" in res.stdout


UNIT_TESTS = {
    "rule_files": ["rules.yaml"],
    "evaluation_interval": "1m",
    "tests": [
        {   # 10% of MLflow requests fail with 500 for 20 minutes
            "interval": "1m",
            "input_series": [
                {"series": 'mlflow_http_request_total{job="mlflow",namespace="mlflow",method="GET",'
                           'status="200"}', "values": "0+90x30"},
                {"series": 'mlflow_http_request_total{job="mlflow",namespace="mlflow",method="POST",'
                           'status="500"}', "values": "0+10x30"},
            ],
            "alert_rule_test": [
                {"eval_time": "5m", "alertname": "MLflowHighErrorRate", "exp_alerts": []},  # still pending
                {"eval_time": "20m", "alertname": "MLflowHighErrorRate", "exp_alerts": [
                    {"exp_labels": {"severity": "warning", "namespace": "mlflow"}, "exp_annotations": {
                        "summary": "MLflow answers more than 5% of requests with 5xx in mlflow",
                        "description": "5xx ratio is 10%; check the tracking server logs and PostgreSQL."}}]},
            ],
        },
        {   # a promotion fails at minute 3
            "interval": "1m",
            "input_series": [
                {"series": 'gitops_promotions_total{job="gitops-webhook",namespace="mlflow",env="prod",'
                           'result="failed"}', "values": "0 0 0 1 1 1 1 1"},
                {"series": 'gitops_promotions_total{job="gitops-webhook",namespace="mlflow",env="prod",'
                           'result="committed"}', "values": "0+1x8"},
            ],
            "alert_rule_test": [
                {"eval_time": "2m", "alertname": "PromotionFailed", "exp_alerts": []},
                {"eval_time": "5m", "alertname": "PromotionFailed", "exp_alerts": [
                    {"exp_labels": {"severity": "critical", "namespace": "mlflow", "env": "prod"},
                     "exp_annotations": {
                        "summary": "A promotion to prod failed",
                        "description": "The receiver gave up on a promotion; see its logs and "
                                       "`gitops-tool status`."}}]},
            ],
        },
        {   # drift for 10 minutes is tolerated, for 20 it alerts; the receiver going down alerts after 5
            "interval": "1m",
            "input_series": [
                {"series": 'gitops_drift{job="gitops-webhook",namespace="mlflow",model="wine-classifier",'
                           'env="dev",alias="candidate"}', "values": "1x30"},
                {"series": 'up{job="gitops-webhook",namespace="mlflow"}', "values": "1 1 0x20"},
            ],
            "alert_rule_test": [
                {"eval_time": "10m", "alertname": "RegistryGitDrift", "exp_alerts": []},
                {"eval_time": "20m", "alertname": "RegistryGitDrift", "exp_alerts": [
                    {"exp_labels": {"severity": "warning", "namespace": "mlflow", "model": "wine-classifier",
                                    "env": "dev", "alias": "candidate"}, "exp_annotations": {
                        "summary": "wine-classifier@candidate differs from Git in dev",
                        "description": "The registry alias points at a version Git does not deploy, "
                                       "for over 15m."}}]},
                {"eval_time": "4m", "alertname": "WebhookReceiverDown", "exp_alerts": []},
                {"eval_time": "10m", "alertname": "WebhookReceiverDown", "exp_alerts": [
                    {"exp_labels": {"severity": "critical", "namespace": "mlflow"}, "exp_annotations": {
                        "summary": "The MLflow webhook receiver is down in mlflow",
                        "description": "Alias moves are not turned into commits; "
                                       "`gitops-tool reconcile` catches up."}}]},
            ],
        },
    ],
}


@needs_promtool
def test_promtool_unit_tests(main, tmp_path):
    _rule_file(main, tmp_path)
    tests = tmp_path / "tests.yaml"
    tests.write_text(yaml.safe_dump(UNIT_TESTS, sort_keys=False))
    res = subprocess.run([PROMTOOL, "test", "rules", str(tests)], capture_output=True, text=True, timeout=60,
                         cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr


# --- dashboard --------------------------------------------------------------------------------

def test_dashboard_configmap(main, platform):
    cm = find(main, "ConfigMap", "gitops-tool-dashboard")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    board = json.loads(cm["data"][monitoring.DASHBOARD_KEY])
    assert board["uid"] == monitoring.DASHBOARD_UID
    titles = [p["title"] for p in board["panels"]]
    assert len(titles) == len(set(titles)) >= 6
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids))
    used = set().union(*(monitoring.metric_names(q) for q in monitoring.dashboard_queries(load_config(
        platform / "gitops.yaml"))))
    assert {"mlflow_http_request_total", "mlflow_http_request_duration_seconds_bucket", "gitops_promotions_total",
            "gitops_alias_to_commit_seconds_bucket", "gitops_drift"} <= used
    # Deterministic: the same config gives byte-identical JSON.
    cfg = load_config(platform / "gitops.yaml")
    assert monitoring.dashboard_configmap(cfg) == monitoring.dashboard_configmap(cfg)
    assert cm["data"][monitoring.DASHBOARD_KEY] == monitoring.dashboard_configmap(cfg)["data"][
        monitoring.DASHBOARD_KEY]


@pytest.mark.parametrize("expr, names", [
    ('sum by (namespace) (rate(mlflow_http_request_total{job="mlflow",status=~"5.."}[5m]))',
     {"mlflow_http_request_total"}),
    ("histogram_quantile(0.95, sum by (le) (rate(a_bucket{x=\"y\"}[$__rate_interval])))", {"a_bucket"}),
    ("time() - max by (namespace) (last_ts) > 900", {"last_ts"}),
    ('absent(up{job="x"})', {"up"}),
    ("a / on (namespace) group_left (env) b unless c offset 5m > 1e3", {"a", "b", "c"}),
])
def test_metric_names(expr, names):
    assert monitoring.metric_names(expr) == names


# --- drift gauge ------------------------------------------------------------------------------

@dataclass
class Row:
    model: str
    env: str
    aliases: dict = field(default_factory=dict)
    drift: list = field(default_factory=list)
    error: str | None = None  # as promotion.status.EnvStatus: the registry could not answer for this model


def test_drift_monitor_sets_and_clears_the_gauge():
    from prometheus_client import CollectorRegistry

    from gitops_tool.errors import GitopsError
    from gitops_tool.webhook.drift import DriftMonitor

    answers = [
        [Row("m", "dev", {"candidate": "2"}, ["candidate"]), Row("m", "prod", {"champion": "1"}, [])],
        GitopsError("registry down"),
        [Row("m", "dev", {"candidate": "2"}, [])],
    ]

    def check():
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    registry = CollectorRegistry()
    monitor = DriftMonitor(registry, check, interval=60)
    value = registry.get_sample_value
    assert monitor.run_once()
    assert value("gitops_drift", {"model": "m", "env": "dev", "alias": "candidate"}) == 1
    assert value("gitops_drift", {"model": "m", "env": "prod", "alias": "champion"}) == 0
    stamp = value("gitops_drift_check_last_success_timestamp_seconds")
    assert stamp and stamp > 0
    assert not monitor.run_once()  # a failed check keeps the last values and counts the error
    assert value("gitops_drift_check_errors_total") == 1
    assert value("gitops_drift", {"model": "m", "env": "dev", "alias": "candidate"}) == 1
    assert monitor.run_once()
    assert value("gitops_drift", {"model": "m", "env": "dev", "alias": "candidate"}) == 0
    assert value("gitops_drift", {"model": "m", "env": "prod", "alias": "champion"}) is None  # unmapped: gone
