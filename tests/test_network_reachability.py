"""Every flow the platform needs is allowed by the rendered NetworkPolicies, and others are denied.

The policies are the real `kubectl kustomize` output of the platform overlay and the serving
overlays on the platform's cluster; the pods are the rendered workloads' pod templates (their
labels after kustomize) plus the cluster's own pods, by the namespace and labels gitops.yaml
names (ingress controller, Prometheus) or their upstream defaults (kube-dns, Knative activator,
KServe predictor pods). gitops_tool.platform.netpol evaluates them as a CNI would; no cluster
runs here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_tool.platform.netpol import Pod, allowed, policies_in, selector_matches, workload_pods
from tests.conftest import render_docs
from tests.platform_fixtures import storage_project

ISVC = "serving.kserve.io/inferenceservice"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory) -> dict:
    root = storage_project(tmp_path_factory.mktemp("netpol") / "platform")
    docs = {label: render_docs(root / "environments" / label) for label in ("platform/main", "dev", "staging", "prod")}
    pods = workload_pods(docs["platform/main"])
    pods |= {
        "ingress-controller": Pod("ingress-controller", "ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}),
        "ingress-other": Pod("ingress-other", "ingress-nginx", {"app.kubernetes.io/name": "cert-manager-solver"}),
        "prometheus": Pod("prometheus", "monitoring", {"app.kubernetes.io/name": "prometheus"}),
        "grafana": Pod("grafana", "monitoring", {"app.kubernetes.io/name": "grafana"}),
        "kube-dns": Pod("kube-dns", "kube-system", {"k8s-app": "kube-dns"}, {"dns": 53}),
        "activator": Pod("activator", "knative-serving", {"app": "activator"}),
        # A storage-mode predictor pod: KServe's storage-initializer runs as its init container.
        "dev-predictor": Pod("dev-predictor", "models-dev", {ISVC: "wine-storage", "component": "predictor"}),
        "staging-predictor": Pod("staging-predictor", "models-staging", {ISVC: "wine-classifier"}),
        "prod-predictor": Pod("prod-predictor", "models-prod", {ISVC: "wine-classifier"}),
        "debug-in-mlflow": Pod("debug-in-mlflow", "mlflow", {"app": "debug"}),
        "debug-elsewhere": Pod("debug-elsewhere", "default", {"app": "debug"}),
        "other-in-dev": Pod("other-in-dev", "models-dev", {"app": "notebook"}),
    }
    # prod is on its own cluster: its policies only govern its own pods, evaluated the same way.
    policies = [p for overlay in docs.values() for p in policies_in(overlay)]
    return {"pods": pods, "policies": policies}


NEEDED = [
    # (flow, source, destination, port)
    ("ingress controller -> MLflow", "ingress-controller", "mlflow", "http"),
    ("receiver -> MLflow (alias lookups)", "gitops-webhook", "mlflow", "http"),
    ("register Job -> MLflow (webhook CRUD)", "gitops-webhook-register", "mlflow", "http"),
    ("MLflow -> receiver (webhook deliveries)", "mlflow", "gitops-webhook", "http"),
    ("Prometheus -> MLflow /metrics", "prometheus", "mlflow", "http"),
    ("Prometheus -> receiver /metrics", "prometheus", "gitops-webhook", "http"),
    ("Prometheus -> MLServer metrics (storage-mode predictor)", "prometheus", "dev-predictor", 8082),
    ("storage-initializer -> object store", "dev-predictor", "minio", "api"),
    ("MLflow -> PostgreSQL", "mlflow", "postgres", "postgres"),
    ("migration Job -> PostgreSQL", "mlflow-db-upgrade", "postgres", "postgres"),
    ("MLflow -> object store", "mlflow", "minio", "api"),
    ("bucket Job -> object store", "minio-create-bucket", "minio", "api"),
    ("ingress controller -> predictor", "ingress-controller", "staging-predictor", 8080),
    ("Knative activator -> Serverless predictor queue-proxy", "activator", "prod-predictor", 8012),
]
DNS_CLIENTS = ["mlflow", "postgres", "minio", "gitops-webhook", "gitops-webhook-register", "mlflow-db-upgrade",
               "minio-create-bucket", "dev-predictor", "prod-predictor"]
DENIED = [
    ("an arbitrary pod in the platform namespace -> PostgreSQL", "debug-in-mlflow", "postgres", 5432),
    ("a pod in another namespace -> PostgreSQL", "debug-elsewhere", "postgres", 5432),
    ("the receiver -> PostgreSQL", "gitops-webhook", "postgres", 5432),
    ("an arbitrary pod -> the object store", "debug-in-mlflow", "minio", 9000),
    ("an arbitrary pod -> MLflow (bypassing the Ingress's auth)", "debug-in-mlflow", "mlflow", 5000),
    ("another pod in the ingress namespace -> MLflow", "ingress-other", "mlflow", 5000),
    ("Grafana (monitoring namespace, not Prometheus) -> MLflow", "grafana", "mlflow", 5000),
    ("an arbitrary pod -> the receiver (forged deliveries)", "debug-elsewhere", "gitops-webhook", 8080),
    ("a staging predictor (no storage-mode model there) -> the object store", "staging-predictor", "minio", 9000),
    ("a non-predictor pod in a serving namespace -> the object store", "other-in-dev", "minio", 9000),
    ("an arbitrary pod -> a predictor", "debug-elsewhere", "staging-predictor", 8080),
    ("the ingress controller -> PostgreSQL", "ingress-controller", "postgres", 5432),
]


@pytest.mark.parametrize("flow, src, dst, port", NEEDED, ids=[f[0] for f in NEEDED])
def test_needed_flow_is_allowed(cluster, flow, src, dst, port):
    pods = cluster["pods"]
    assert allowed(cluster["policies"], pods[src], pods[dst], port), flow


@pytest.mark.parametrize("client", DNS_CLIENTS)
def test_dns_is_reachable(cluster, client):
    pods = cluster["pods"]
    for protocol in ("UDP", "TCP"):
        assert allowed(cluster["policies"], pods[client], pods["kube-dns"], 53, protocol), (client, protocol)


@pytest.mark.parametrize("flow, src, dst, port", DENIED, ids=[f[0] for f in DENIED])
def test_other_flow_is_denied(cluster, flow, src, dst, port):
    pods = cluster["pods"]
    assert not allowed(cluster["policies"], pods[src], pods[dst], port), flow


def test_every_platform_workload_is_covered_by_a_policy(cluster):
    """default-deny selects every pod in the platform namespace: nothing is open by omission."""
    platform = [p for p in cluster["policies"] if p["metadata"]["namespace"] == "mlflow"]
    for pod in (p for p in cluster["pods"].values() if p.namespace == "mlflow"):
        assert any(selector_matches(p["spec"]["podSelector"], pod.labels) for p in platform), pod.name


# --- the evaluator itself, on hand-written policies (the cases the rendered ones do not reach) ---

def _policy(ns: str, selector: dict, ingress: list | None = None, egress: list | None = None) -> dict:
    spec: dict = {"podSelector": selector, "policyTypes": []}
    if ingress is not None:
        spec["policyTypes"].append("Ingress")
        spec["ingress"] = ingress
    if egress is not None:
        spec["policyTypes"].append("Egress")
        spec["egress"] = egress
    return {"kind": "NetworkPolicy", "metadata": {"name": "p", "namespace": ns}, "spec": spec}


def test_evaluator_semantics():
    a, b = Pod("a", "ns1", {"app": "a"}), Pod("b", "ns2", {"app": "b"}, {"web": 80})
    assert allowed([], a, b, 80)  # nothing selects either pod
    deny_egress = _policy("ns1", {}, egress=[])
    assert not allowed([deny_egress], a, b, 80)
    only_dns = _policy("ns1", {}, egress=[{"ports": [{"protocol": "UDP", "port": 53}]}])
    assert not allowed([only_dns], a, b, 80) and allowed([only_dns], a, b, 53, "UDP")
    # podSelector alone is the policy's own namespace: a is in ns1, the policy in ns2.
    same_ns = _policy("ns2", {"matchLabels": {"app": "b"}}, ingress=[{"from": [{"podSelector": {}}]}])
    assert not allowed([same_ns], a, b, 80)
    both = _policy("ns2", {}, ingress=[{"from": [{"namespaceSelector": {"matchLabels": {
        "kubernetes.io/metadata.name": "ns1"}}, "podSelector": {"matchLabels": {"app": "a"}}}],
        "ports": [{"port": "web"}]}])
    assert allowed([both], a, b, 80) and not allowed([both], a, b, 81)
    ranged = _policy("ns2", {}, ingress=[{"ports": [{"port": 8000, "endPort": 8100}]}])
    assert allowed([ranged], a, b, 8050) and not allowed([ranged], a, b, 8101)
    expr = {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["b"]}]}
    assert selector_matches(expr, {"app": "a"}) and not selector_matches(expr, {"app": "b"})
    with pytest.raises(ValueError):
        selector_matches({"matchExpressions": [{"key": "k", "operator": "Gt"}]}, {})
