"""The Gateway API edge (`platform.edge.kind: gateway-api`): an HTTPRoute to MLflow, and its basic
auth as an Envoy Gateway SecurityPolicy over the htpasswd Secret.

ingress-nginx was retired in March 2026; Gateway API is its successor. Basic auth is not part of
Gateway API itself, so it goes through the implementation's own policy: Envoy Gateway's
SecurityPolicy `basicAuth` is the one supported here. Its Secret holds the htpasswd lines under the
key `.htpasswd`, and Envoy accepts only `{SHA}` entries (`gitops-tool secrets htpasswd --sha`).
TLS terminates at the Gateway's listener, which the platform team owns (cert-manager's
gateway-shim issues it there), so the HTTPRoute carries no TLS of its own.
"""

from __future__ import annotations

from gitops_tool.config import Config, PlatformInstance
from gitops_tool.platform.common import WAVE, metadata

SUPPORTED = ("envoy-gateway",)
HTPASSWD_KEY = ".htpasswd"
PLACEHOLDER_HOST = "mlflow.example.invalid"  # every platform overlay sets its own host


def uses_gateway(cfg: Config) -> bool:
    return cfg.edge["kind"] == "gateway-api"


def http_route(cfg: Config) -> dict:
    gateway = cfg.edge["gateway"]
    parent = {"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": gateway["name"],
              "namespace": gateway["namespace"]}
    if gateway.get("section_name"):
        parent["sectionName"] = gateway["section_name"]
    return {
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute",
        "metadata": metadata("mlflow", "tracking-server", wave=WAVE["edge"]),
        "spec": {
            "parentRefs": [parent],
            "hostnames": [PLACEHOLDER_HOST],
            "rules": [{
                "matches": [{"path": {"type": "PathPrefix", "value": "/"}}],
                "backendRefs": [{"name": "mlflow", "port": cfg.mlflow["port"]}],
                # Artifact uploads go through the tracking server (--serve-artifacts): no short timeout.
                "timeouts": {"request": "300s"},
            }],
        },
    }


def basic_auth_policy() -> dict:
    return {
        "apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "SecurityPolicy",
        "metadata": metadata("mlflow-basic-auth", "tracking-server", wave=WAVE["edge"]),
        "spec": {
            "targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "HTTPRoute", "name": "mlflow"}],
            "basicAuth": {"users": {"name": "mlflow-basic-auth"}},
        },
    }


def gateway_files(cfg: Config) -> dict[str, list[dict]]:
    """base/platform/ files of the Gateway API edge (they replace ingress.yaml)."""
    return {"httproute.yaml": [http_route(cfg)], "securitypolicy.yaml": [basic_auth_policy()]}


def route_patch(inst: PlatformInstance) -> dict:
    return {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "HTTPRoute", "metadata": {"name": "mlflow"},
            "spec": {"hostnames": [inst.host]}}


def no_auth_patch() -> dict:
    """basic_auth: false on this instance: the SecurityPolicy goes."""
    return {"apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "SecurityPolicy",
            "metadata": {"name": "mlflow-basic-auth"}, "$patch": "delete"}


def edge_patches(inst: PlatformInstance) -> dict[str, dict]:
    patches = {"httproute.yaml": route_patch(inst)}
    if not inst.basic_auth:
        patches["no-basic-auth.yaml"] = no_auth_patch()
    return patches
