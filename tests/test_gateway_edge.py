"""`platform.edge.kind: gateway-api`: an HTTPRoute and Envoy Gateway's basic-auth SecurityPolicy instead of
the nginx Ingress, rendered by the real kustomize and checked against the upstream CRD schemas.

No Gateway controller or Envoy proxy runs here: the routes are checked as manifests (schemas, references
between them), and the {SHA} htpasswd format Envoy accepts is checked in a real nginx (tests/test_secrets.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_tool.config import load_config_text
from gitops_tool.errors import GitopsError
from gitops_tool.project import generate, init_project, starter_config
from gitops_tool.validate import validate_all
from tests.conftest import find, render_docs

EDGE = "  edge:\n    kind: gateway-api\n    gateway: {name: platform, namespace: gateway-system, section_name: https}\n"
TLS_ON = "      tls: {enabled: true, secret_name: mlflow-tls, cluster_issuer: letsencrypt-prod}\n"


def _gateway_config(text: str) -> str:
    assert "  instances:\n" in text and TLS_ON in text
    return text.replace("  instances:\n", EDGE + "  instances:\n", 1).replace(TLS_ON, "      tls: {enabled: false}\n")


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("gateway") / "platform"
    init_project(root)
    config = root / "gitops.yaml"
    config.write_text(_gateway_config(config.read_text()))
    generate(config)
    return root


def test_httproute_replaces_the_ingress(root: Path, schema_dir: Path):
    docs = render_docs(root / "environments/platform/main")
    assert not [d for d in docs if d["kind"] == "Ingress"]
    route = find(docs, "HTTPRoute", "mlflow")
    assert route["spec"]["hostnames"] == ["mlflow.example.com"]
    assert route["spec"]["parentRefs"] == [{"group": "gateway.networking.k8s.io", "kind": "Gateway",
                                            "name": "platform", "namespace": "gateway-system", "sectionName": "https"}]
    service = find(docs, "Service", "mlflow")
    backend = route["spec"]["rules"][0]["backendRefs"][0]
    assert backend["name"] == service["metadata"]["name"]
    assert backend["port"] in [p["port"] for p in service["spec"]["ports"]]
    policy = find(docs, "SecurityPolicy", "mlflow-basic-auth")
    assert policy["spec"]["targetRefs"][0] == {"group": "gateway.networking.k8s.io", "kind": "HTTPRoute",
                                               "name": "mlflow"}
    secret = find(docs, "ExternalSecret", policy["spec"]["basicAuth"]["users"]["name"])
    assert [d["secretKey"] for d in secret["spec"]["data"]] == [".htpasswd"]  # the key Envoy Gateway reads
    findings = validate_all({"platform/main": root / "environments/platform/main"}, schema_dir=schema_dir)
    assert [str(f) for f in findings] == []


def test_mlflow_admits_the_gateway_proxies_not_the_ingress_controller(root: Path):
    docs = render_docs(root / "environments/platform/main")
    sources = find(docs, "NetworkPolicy", "mlflow-from-clients")["spec"]["ingress"][0]["from"]
    namespaces = [s["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                  for s in sources if "namespaceSelector" in s]
    assert "envoy-gateway-system" in namespaces and "ingress-nginx" not in namespaces


def test_basic_auth_off_drops_the_security_policy(tmp_path: Path):
    root = tmp_path / "p"
    init_project(root)
    config = root / "gitops.yaml"
    text = _gateway_config(config.read_text())
    config.write_text(text.replace("      basic_auth: true\n", "      basic_auth: false\n"))
    generate(config)
    docs = render_docs(root / "environments/platform/main")
    assert not [d for d in docs if d["kind"] == "SecurityPolicy"]
    assert find(docs, "HTTPRoute", "mlflow")
    assert not [d for d in docs if d["kind"] == "ExternalSecret" and d["metadata"]["name"] == "mlflow-basic-auth"]


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.replace("kind: gateway-api\n", "kind: gateway-api\n    implementation: istio\n"),
     "platform.edge.implementation: 'istio' is not supported: basic auth is rendered as Envoy Gateway's "
     "SecurityPolicy (supported: envoy-gateway)"),
    (lambda t: t.replace("      tls: {enabled: false}\n", TLS_ON),
     "platform.instances.main.tls: with edge kind gateway-api TLS terminates at the Gateway's listener"),
    (lambda t: t.replace("    gateway: {name: platform, namespace: gateway-system, section_name: https}\n", ""),
     "platform.edge: 'gateway' is a required property"),
])
def test_refused_edges_name_the_field(edit, message):
    text = edit(_gateway_config(starter_config()))
    with pytest.raises(GitopsError) as info:
        load_config_text(text)
    assert message in str(info.value)
    assert str(info.value).startswith("gitops.yaml:")
