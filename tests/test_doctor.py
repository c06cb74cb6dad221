"""`gitops-tool doctor`: what the clusters must provide, and `--cluster` against a stand-in API server.

Stand-in: no Kubernetes API server runs here, so `--cluster` talks real HTTP through the real
kubernetes client to tests/test_cluster_status.FakeApiServer (a loopback HTTP server answering
the GET paths below with API-shaped JSON; 404 with a Status body for anything else).
"""

from __future__ import annotations

import json

import pytest

from tests.conftest import run_cli
from tests.test_cluster_status import FakeApiServer, api  # noqa: F401 - `api` is a fixture

CRDS = {"applications.argoproj.io": "v1alpha1", "appprojects.argoproj.io": "v1alpha1",
        "servicemonitors.monitoring.coreos.com": "v1", "prometheusrules.monitoring.coreos.com": "v1",
        "podmonitors.monitoring.coreos.com": "v1", "inferenceservices.serving.kserve.io": "v1beta1",
        "externalsecrets.external-secrets.io": "v1", "certificates.cert-manager.io": "v1"}


def _crd(name: str, *versions: str) -> tuple[int, str]:
    plural, group = name.split(".", 1)
    return 200, json.dumps({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": {"name": name},
        "spec": {"group": group, "scope": "Namespaced", "names": {"plural": plural, "kind": plural.title()},
                 "versions": [{"name": v, "served": True, "storage": i == 0} for i, v in enumerate(versions)]}})


def _pods(*names: str) -> tuple[int, str]:
    return 200, json.dumps({"apiVersion": "v1", "kind": "PodList", "metadata": {},
                            "items": [{"metadata": {"name": n}, "status": {"phase": "Running"}} for n in names]})


def _object(kind: str, name: str, **spec) -> tuple[int, str]:
    return 200, json.dumps({"apiVersion": "v1", "kind": kind, "metadata": {"name": name}, "spec": spec})


def _healthy(fake: FakeApiServer) -> None:
    for name, version in CRDS.items():
        fake.set(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}", _crd(name, version))
    fake.set("/api/v1/namespaces/argocd", _object("Namespace", "argocd"))
    fake.set("/apis/networking.k8s.io/v1/ingressclasses/nginx", _object("IngressClass", "nginx"))
    fake.set("/api/v1/namespaces/ingress-nginx/pods", _pods("ingress-nginx-controller-1"))
    fake.set("/api/v1/namespaces/monitoring/pods", _pods("prometheus-0"))
    fake.set("/apis/monitoring.coreos.com/v1/namespaces/monitoring/prometheuses", (200, json.dumps({
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusList", "items": [{
            "metadata": {"name": "kube-prometheus-stack-prometheus"},
            "spec": {"serviceMonitorSelector": {"matchLabels": {"release": "kube-prometheus-stack"}},
                     "ruleSelector": {"matchLabels": {"release": "kube-prometheus-stack"}}}}]})))
    fake.set("/apis/external-secrets.io/v1/clustersecretstores/platform-secrets",
             _object("ClusterSecretStore", "platform-secrets"))
    fake.set("/apis/cert-manager.io/v1/clusterissuers/letsencrypt-prod", _object("ClusterIssuer", "letsencrypt-prod"))


def test_offline_lists_what_this_config_needs(project):
    done = run_cli("doctor", "-o", "json", cwd=project)
    assert done.returncode == 0, done.stderr
    reqs = {r["what"]: r for r in json.loads(done.stdout)}
    assert {"Argo CD", "ingress-nginx", "Prometheus Operator", "KServe", "Knative Serving",
            "External Secrets Operator", "cert-manager"} == set(reqs)
    assert reqs["Knative Serving"]["clusters"] == ["prod"]  # only prod is Serverless
    assert "clusterissuers.cert-manager.io letsencrypt-prod" in reqs["cert-manager"]["checks"]
    assert any("release=kube-prometheus-stack" in c for c in reqs["Prometheus Operator"]["checks"])


def test_offline_follows_the_config(project):
    config = project / "gitops.yaml"
    text = config.read_text().replace("secrets: {method: external, store: platform-secrets, remote_prefix: mlflow/platform}",
                                      "secrets: {method: sealed}")
    text = text.replace("models:\n", "models:\n  wine-storage:\n    mode: storage\n    aliases: {candidate: dev}\n", 1)
    config.write_text(text)
    reqs = {r["what"]: r for r in json.loads(run_cli("doctor", "-o", "json", cwd=project).stdout)}
    assert reqs["sealed-secrets controller"]["needed_for"] == "SealedSecrets of platform/main"
    assert "KServe MLflow runtime" in reqs
    # Only dev still reads an ExternalSecret: the storage credentials of its storage-mode model.
    assert reqs["External Secrets Operator"]["needed_for"] == "ExternalSecrets of dev"


def test_cluster_check_passes_against_the_stand_in_api(api, project):
    _healthy(api)
    done = run_cli("doctor", "--cluster", cwd=project)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "MISSING" not in done.stdout + done.stderr and "checks ok" in done.stdout
    assert api.count("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/inferenceservices.serving.kserve.io") == 1


def test_cluster_check_names_what_is_missing(api, project):
    _healthy(api)
    api.set("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/externalsecrets.external-secrets.io",
            _crd("externalsecrets.external-secrets.io", "v1beta1"))
    api.set("/apis/monitoring.coreos.com/v1/namespaces/monitoring/prometheuses", (200, json.dumps({
        "apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusList", "items": [{
            "metadata": {"name": "main"}, "spec": {"serviceMonitorSelector": {"matchLabels": {"team": "ml"}}}}]})))
    api.set("/api/v1/namespaces/ingress-nginx/pods", _pods())
    api.set("/apis/cert-manager.io/v1/clusterissuers/letsencrypt-prod", (404, json.dumps({
        "kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404})))
    done = run_cli("doctor", "--cluster", "-o", "json", cwd=project)
    assert done.returncode == 1
    problems = {r["check"]: r["problem"] for r in json.loads(done.stdout) if not r["ok"]}
    assert problems == {
        "CRD externalsecrets.external-secrets.io serving v1": "serves v1beta1, not v1",
        "a Prometheus in monitoring selecting ServiceMonitors/PrometheusRules by release=kube-prometheus-stack":
            "no Prometheus selects labels release=kube-prometheus-stack for both ServiceMonitors and rules "
            "(found: main); set network.prometheus_selector",
        "running pods app.kubernetes.io/name=ingress-nginx in namespace ingress-nginx":
            "no running pod matches app.kubernetes.io/name=ingress-nginx (set network.* in gitops.yaml)",
        "clusterissuers.cert-manager.io letsencrypt-prod": "not found",
    }


def test_unknown_cluster_is_a_clear_error(api, project):
    done = run_cli("doctor", "--cluster", "--for", "staging-cluster", cwd=project)
    assert done.returncode == 1 and "no cluster 'staging-cluster' (known: in-cluster, prod)" in done.stderr


@pytest.mark.parametrize("target, expected", [("prod", {"Knative Serving", "KServe"})])
def test_a_serving_cluster_is_checked_for_serving_only(api, project, target, expected):
    _healthy(api)
    done = run_cli("doctor", "--cluster", "--for", target, "-o", "json", cwd=project)
    whats = {r["what"] for r in json.loads(done.stdout)}
    assert expected <= whats and "Argo CD" not in whats and "cert-manager" not in whats
    assert done.returncode == 1  # the stand-in serves no Knative CRD
