"""Alerts, the Grafana dashboard and the KServe PodMonitor, all generated from the config.

Metric names here are the ones the real servers expose (tests/test_metrics_scrape.py scrapes
`mlflow server --expose-prometheus` and the receiver and checks every name used below).
MLflow 3.17 labels requests by method and status only (no endpoint/path label).
`job` is the Service name: the prometheus-operator default for a ServiceMonitor target.
"""

from __future__ import annotations

import json
import re

from gitops_tool.config import Config
from gitops_tool.platform.common import WAVE, metadata
from gitops_tool.platform.edge import from_prometheus, monitoring_metadata

MLFLOW_JOB = "mlflow"              # Service mlflow (platform/mlflow_server.py)
RECEIVER_JOB = "gitops-webhook"    # Service gitops-webhook (platform/receiver.py)
REJECTED = "unauthorized|stale|replayed|too_large|malformed"
DRIFT_FOR = "15m"                  # a webhook promotion lands in seconds; reconcile runs hourly
# MLServer (>= 1.1) serves Prometheus metrics on its own port, not the inference port.
MLSERVER_METRICS_PORT = 8082
DASHBOARD_UID = "gitops-tool-mlflow"
DASHBOARD_KEY = "mlflow-platform.json"  # same key in every env: the sidecar keeps one copy
ISVC_LABEL = "serving.kserve.io/inferenceservice"  # KServe puts it on every predictor pod


def _alert(name: str, expr: str, for_: str, severity: str, summary: str, description: str) -> dict:
    rule = {"alert": name, "expr": expr}
    if for_ != "0m":
        rule["for"] = for_
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {"summary": summary, "description": description}
    return rule


def _mlflow_rules() -> list[dict]:
    total = f'sum by (namespace) (rate(mlflow_http_request_total{{job="{MLFLOW_JOB}"}}[5m]))'
    errors = f'sum by (namespace) (rate(mlflow_http_request_total{{job="{MLFLOW_JOB}",status=~"5.."}}[5m]))'
    p95 = ("histogram_quantile(0.95, sum by (namespace, le) "
           f'(rate(mlflow_http_request_duration_seconds_bucket{{job="{MLFLOW_JOB}"}}[5m])))')
    return [
        _alert("MLflowHighErrorRate", f"({errors} / {total}) > 0.05", "10m", "warning",
               "MLflow answers more than 5% of requests with 5xx in {{ $labels.namespace }}",
               "5xx ratio is {{ $value | humanizePercentage }}; check the tracking server logs and PostgreSQL."),
        _alert("MLflowHighLatency", f"{p95} > 2", "15m", "warning",
               "MLflow p95 latency above 2 s in {{ $labels.namespace }}",
               "p95 is {{ $value | humanizeDuration }}; artifact uploads go through the server."),
        _alert("MLflowDown", f'sum by (namespace) (up{{job="{MLFLOW_JOB}"}}) == 0', "5m", "critical",
               "No MLflow replica answers /metrics in {{ $labels.namespace }}",
               "Every scrape of the mlflow Service failed for 5 minutes."),
        _alert("MLflowMetricsAbsent", f'absent(up{{job="{MLFLOW_JOB}"}})', "15m", "warning",
               "Prometheus scrapes no MLflow target",
               "The mlflow ServiceMonitor selects nothing, or Prometheus does not load it."),
    ]


def _receiver_rules() -> list[dict]:
    rejected = ("sum by (namespace, outcome) (increase(gitops_webhook_deliveries_total"
                f'{{outcome=~"{REJECTED}"}}[10m]))')
    queue_full = 'sum by (namespace) (increase(gitops_webhook_deliveries_total{outcome="queue_full"}[10m]))'
    failed = 'sum by (namespace, env) (increase(gitops_promotions_total{result="failed"}[15m]))'
    return [
        _alert("WebhookReceiverDown", f'sum by (namespace) (up{{job="{RECEIVER_JOB}"}}) == 0', "5m", "critical",
               "The MLflow webhook receiver is down in {{ $labels.namespace }}",
               "Alias moves are not turned into commits; `gitops-tool reconcile` catches up."),
        _alert("WebhookReceiverMetricsAbsent", f'absent(up{{job="{RECEIVER_JOB}"}})', "15m", "warning",
               "Prometheus scrapes no webhook receiver target",
               "The gitops-webhook ServiceMonitor selects nothing, or Prometheus does not load it."),
        _alert("WebhookDeliveriesRejected", f"{rejected} > 3", "0m", "warning",
               "Webhook deliveries rejected as {{ $labels.outcome }} in {{ $labels.namespace }}",
               "{{ $value }} in 10 minutes: a rotated or wrong secret, clock skew, or forged requests."),
        _alert("WebhookQueueFull", f"{queue_full} > 0", "0m", "warning",
               "The webhook receiver refused deliveries with a full queue in {{ $labels.namespace }}",
               "MLflow retries 5xx three times only; run `gitops-tool reconcile`."),
        _alert("PromotionFailed", f"{failed} > 0", "0m", "critical",
               "A promotion to {{ $labels.env }} failed",
               "The receiver gave up on a promotion; see its logs and `gitops-tool status`."),
        _alert("RegistryGitDrift", "max by (namespace, model, env, alias) (gitops_drift) == 1", DRIFT_FOR,
               "warning", "{{ $labels.model }}@{{ $labels.alias }} differs from Git in {{ $labels.env }}",
               f"The registry alias points at a version Git does not deploy, for over {DRIFT_FOR}."),
        _alert("DriftCheckStale",
               "time() - max by (namespace) (gitops_drift_check_last_success_timestamp_seconds) > 900", "5m",
               "warning", "The receiver's drift check has not succeeded for 15 minutes",
               "It clones the GitOps repo and reads the registry; see the receiver logs."),
    ]


MLFLOW_GROUP, RECEIVER_GROUP = "gitops-tool.mlflow", "gitops-tool.promotions"


def alert_groups() -> list[dict]:
    return [{"name": MLFLOW_GROUP, "rules": _mlflow_rules()},
            {"name": RECEIVER_GROUP, "rules": _receiver_rules()}]


def prometheus_rule(cfg: Config, *, receiver: bool = False) -> dict:
    """Every instance's MLflow alerts (`gitops-tool`), or the receiver's (`gitops-tool-receiver`): the
    receiver runs only on the registry of record, where its absent() alerts can mean something."""
    name, group = ("gitops-tool-receiver", RECEIVER_GROUP) if receiver else ("gitops-tool", MLFLOW_GROUP)
    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule",
        "metadata": monitoring_metadata(cfg, name, WAVE["edge"]),
        "spec": {"groups": [g for g in alert_groups() if g["name"] == group]},
    }


def kserve_pod_monitor(cfg: Config) -> dict | None:
    """Scrapes MLServer's metrics port on storage-mode predictors (image mode exposes no metrics).

    KServe's mlserver runtime declares no container port, so the pod target has none:
    relabelling sets the address to podIP:8082.
    """
    names = sorted(m.name for m in cfg.models.values() if m.mode == "storage")
    if not names:
        return None
    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor",
        "metadata": monitoring_metadata(cfg, "kserve-mlserver", WAVE["serving"]),
        "spec": {
            "selector": {"matchExpressions": [{"key": ISVC_LABEL, "operator": "In", "values": names}]},
            "podMetricsEndpoints": [{
                "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s",
                "relabelings": [
                    {"sourceLabels": ["__meta_kubernetes_pod_container_name"], "regex": "kserve-container",
                     "action": "keep"},
                    {"sourceLabels": ["__meta_kubernetes_pod_ip"], "regex": "(.+)",
                     "replacement": f"$1:{MLSERVER_METRICS_PORT}", "targetLabel": "__address__"},
                    {"sourceLabels": [f"__meta_kubernetes_pod_label_{_label_name(ISVC_LABEL)}"],
                     "targetLabel": "inferenceservice"},
                ],
            }],
        },
    }


def mlserver_metrics_policy(cfg: Config) -> dict | None:
    """Prometheus (monitoring namespace) may reach the MLServer metrics port; nothing else may."""
    names = sorted(m.name for m in cfg.models.values() if m.mode == "storage")
    if not names:
        return None
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": metadata("serving-metrics-from-monitoring", "network-policy", wave=WAVE["data"]),
        "spec": {
            "podSelector": {"matchExpressions": [{"key": ISVC_LABEL, "operator": "In", "values": names}]},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [from_prometheus(cfg)],
                "ports": [{"protocol": "TCP", "port": MLSERVER_METRICS_PORT}]}],
        },
    }


def _label_name(label: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_]", "_", label)


# --- dashboard -------------------------------------------------------------------------------

NS = 'namespace=~"$namespace"'
RATE = "$__rate_interval"
PANELS: list[tuple[str, str, list[tuple[str, str]]]] = [
    # (title, unit, [(expr, legend)])
    ("MLflow requests by method and status", "reqps", [
        (f'sum by (method, status) (rate(mlflow_http_request_total{{job="{MLFLOW_JOB}",{NS}}}[{RATE}]))',
         "{{method}} {{status}}")]),
    ("MLflow p95 latency by method", "s", [
        (f"histogram_quantile(0.95, sum by (method, le) (rate(mlflow_http_request_duration_seconds_bucket"
         f'{{job="{MLFLOW_JOB}",{NS}}}[{RATE}])))', "p95 {{method}}")]),
    ("MLflow errors by status (4xx, 5xx)", "reqps", [
        (f'sum by (status) (rate(mlflow_http_request_total{{job="{MLFLOW_JOB}",{NS},status=~"[45].."}}[{RATE}]))',
         "{{status}}")]),
    ("Promotions per environment", "short", [
        (f"sum by (env, result) (increase(gitops_promotions_total{{{NS}}}[1h]))", "{{env}} {{result}}")]),
    ("Alias move to Git commit", "s", [
        (f"histogram_quantile({q}, sum by (le) (rate(gitops_alias_to_commit_seconds_bucket{{{NS}}}[1h])))",
         f"p{int(q * 100)}") for q in (0.5, 0.95)]),
    ("Registry/Git drift (1 = alias not deployed)", "short", [
        (f"max by (model, env, alias) (gitops_drift{{{NS}}})", "{{model}}@{{alias}} -> {{env}}")]),
    ("Webhook deliveries by outcome", "reqps", [
        (f"sum by (outcome) (rate(gitops_webhook_deliveries_total{{{NS}}}[{RATE}]))", "{{outcome}}")]),
    ("Webhook queue depth", "short", [
        (f"max by (namespace) (gitops_webhook_queue_depth{{{NS}}})", "{{namespace}}")]),
]


def _panel(index: int, title: str, unit: str, targets: list[tuple[str, str]]) -> dict:
    return {
        "id": index + 1, "type": "timeseries", "title": title,
        "datasource": {"type": "prometheus", "uid": "${datasource}"},
        "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "targets": [{"refId": chr(ord("A") + i), "expr": expr, "legendFormat": legend}
                    for i, (expr, legend) in enumerate(targets)],
    }


def dashboard(cfg: Config) -> dict:
    variables = [
        {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source"},
        {"name": "namespace", "type": "query", "label": "Namespace", "multi": True, "includeAll": True,
         "datasource": {"type": "prometheus", "uid": "${datasource}"}, "refresh": 2,
         "query": {"query": f'label_values(up{{job="{MLFLOW_JOB}"}}, namespace)', "refId": "namespaces"},
         "definition": f'label_values(up{{job="{MLFLOW_JOB}"}}, namespace)'},
    ]
    return {
        "uid": DASHBOARD_UID, "title": f"MLflow platform ({cfg.project})", "tags": ["gitops-tool", "mlflow"],
        "schemaVersion": 39, "version": 1, "editable": False, "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"}, "templating": {"list": variables},
        "panels": [_panel(i, *p) for i, p in enumerate(PANELS)],
    }


def dashboard_configmap(cfg: Config) -> dict:
    meta = metadata("gitops-tool-dashboard", "monitoring", wave=WAVE["edge"])
    meta["labels"]["grafana_dashboard"] = "1"  # the Grafana sidecar's default selector
    text = json.dumps(dashboard(cfg), indent=2, sort_keys=True) + "\n"
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": meta, "data": {DASHBOARD_KEY: text}}


def dashboard_queries(cfg: Config) -> list[str]:
    return [t["expr"] for p in dashboard(cfg)["panels"] for t in p["targets"]]


def rule_queries() -> list[str]:
    return [rule["expr"] for group in alert_groups() for rule in group["rules"]]


# --- metric names in PromQL ------------------------------------------------------------------

_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset", "and", "or",
             "unless", "inf", "nan"}
_STRIP = [r'"(?:[^"\\]|\\.)*"', r"\{[^}]*\}", r"\[[^\]]*\]", r"\$\w+",
          r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)"]
_IDENT = re.compile(r"(?<![\w.:])([a-zA-Z_:][a-zA-Z0-9_:]*)(?![\w:])(?!\s*\()")


def metric_names(expr: str) -> set[str]:
    """Metric names a PromQL expression reads: strings, matchers, ranges, variables, grouping
    labels, functions and keywords removed. Good enough for the expressions this module writes."""
    for pattern in _STRIP:
        expr = re.sub(pattern, " ", expr)
    return {name for name in _IDENT.findall(expr) if name.lower() not in _KEYWORDS}


def monitoring_files(cfg: Config) -> dict[str, list[dict]]:
    return {"prometheusrule.yaml": [prometheus_rule(cfg)], "dashboard.yaml": [dashboard_configmap(cfg)]}
