"""What sits around MLflow: the nginx Ingress, the ServiceMonitor and the NetworkPolicies."""

from __future__ import annotations

from gitops_tool.config import Config, PlatformInstance
from gitops_tool.platform.common import WAVE, metadata, selector
from gitops_tool.platform.gateway import uses_gateway

AUTH_ANNOTATIONS = {
    "nginx.ingress.kubernetes.io/auth-type": "basic",
    "nginx.ingress.kubernetes.io/auth-secret": "mlflow-basic-auth",
    "nginx.ingress.kubernetes.io/auth-realm": "MLflow - authentication required",
}
PLACEHOLDER_HOST = "mlflow.example.invalid"  # every overlay sets its own host
ISVC_LABEL = "serving.kserve.io/inferenceservice"  # KServe puts it on every predictor pod


def ingress(cfg: Config) -> dict:
    annotations = {
        **AUTH_ANNOTATIONS,
        # Artifact uploads go through the tracking server (--serve-artifacts).
        "nginx.ingress.kubernetes.io/proxy-body-size": cfg.mlflow["max_body_size"],
        "nginx.ingress.kubernetes.io/proxy-read-timeout": "300",
    }
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
        "metadata": metadata("mlflow", "tracking-server", wave=WAVE["edge"], extra=annotations),
        "spec": {
            "ingressClassName": "nginx",
            "rules": [_rule(PLACEHOLDER_HOST)],
        },
    }


def _rule(host: str) -> dict:
    backend = {"service": {"name": "mlflow", "port": {"name": "http"}}}
    return {"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}}


def ingress_env_patch(env: PlatformInstance) -> dict:
    annotations: dict = {}
    if not env.basic_auth:
        annotations = {key: None for key in AUTH_ANNOTATIONS}  # null deletes the key in a strategic merge
    if env.tls_enabled and env.tls_cluster_issuer:
        annotations["cert-manager.io/cluster-issuer"] = env.tls_cluster_issuer
    elif env.tls_enabled and env.tls_issuer:
        annotations["cert-manager.io/issuer"] = env.tls_issuer
    spec: dict = {"rules": [_rule(env.host)]}
    if env.tls_enabled:
        spec["tls"] = [{"hosts": [env.host], "secretName": env.tls_secret}]
    meta: dict = {"name": "mlflow"}
    if annotations:
        meta["annotations"] = annotations
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress", "metadata": meta, "spec": spec}


def monitoring_metadata(cfg: Config, name: str, wave: str) -> dict:
    """ServiceMonitor/PodMonitor/PrometheusRule metadata with the labels the Prometheus Operator selects."""
    meta = metadata(name, "monitoring", wave=wave)
    meta["labels"] |= cfg.network["prometheus_selector"]
    return meta


def service_monitor(cfg: Config, target: str = "mlflow") -> dict:
    """Selects the Service labelled gitops-tool.io/metrics=<target> and scrapes its `http` port."""
    name = "mlflow" if target == "mlflow" else "gitops-webhook"
    return {
        "apiVersion": "monitoring.coreos.com/v1", "kind": "ServiceMonitor",
        "metadata": monitoring_metadata(cfg, name, WAVE["edge"]),
        "spec": {
            "selector": {"matchLabels": {"gitops-tool.io/metrics": target}},
            "endpoints": [{"port": "http", "path": "/metrics", "interval": "30s", "scrapeTimeout": "10s"}],
        },
    }


def _from_namespace(ns: str) -> dict:
    return {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}}}


def _from_pods(name: str) -> dict:
    return {"podSelector": {"matchLabels": selector(name)}}


def from_ingress_controller(cfg: Config) -> dict:
    """The ingress controller's pods, by namespace and pod labels (both must match)."""
    return {**_from_namespace(cfg.ingress_namespace),
            "podSelector": {"matchLabels": dict(cfg.network["ingress_pod_labels"])}}


def proxy_source(cfg: Config) -> dict:
    """The edge's proxies as a NetworkPolicy peer: the ingress controller's pods, or the Gateway's."""
    if not uses_gateway(cfg):
        return from_ingress_controller(cfg)
    # Envoy Gateway labels every proxy pod it runs with its own name.
    return {**_from_namespace(cfg.edge["proxy_namespace"]),
            "podSelector": {"matchLabels": {"app.kubernetes.io/managed-by": "envoy-gateway"}}}


def from_prometheus(cfg: Config) -> dict:
    """Prometheus's pods, by namespace and pod labels (both must match)."""
    return {**_from_namespace(cfg.monitoring_namespace),
            "podSelector": {"matchLabels": dict(cfg.network["prometheus_pod_labels"])}}


def _policy(name: str, target: dict, sources: list[dict], port: int | str) -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": metadata(name, "network-policy", wave=WAVE["data"]),
        "spec": {
            "podSelector": target,
            "policyTypes": ["Ingress"],
            "ingress": [{"from": sources, "ports": [{"protocol": "TCP", "port": port}]}],
        },
    }


def _deny_all() -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": metadata("default-deny-ingress", "network-policy", wave=WAVE["data"]),
        "spec": {"podSelector": {}, "policyTypes": ["Ingress"]},
    }


def platform_network_policies(cfg: Config) -> list[dict]:
    """The platform namespace: only the ingress controller, Prometheus and MLflow's own callers reach MLflow."""
    # The receiver and its register Job call MLflow from inside the namespace (webhook CRUD, alias lookups).
    mlflow_clients = [proxy_source(cfg), from_prometheus(cfg),
                      _from_pods("gitops-webhook"), _from_pods("gitops-webhook-register")]
    return [
        _deny_all(),
        _policy("mlflow-from-clients", {"matchLabels": selector("mlflow")}, mlflow_clients, cfg.mlflow["port"]),
        # The migration Job (mlflow-db-upgrade) runs the schema upgrade before any MLflow replica starts.
        _policy("postgres-from-mlflow", {"matchLabels": selector("postgres")},
                [_from_pods("mlflow"), _from_pods("mlflow-db-upgrade")], 5432),
    ]


def minio_policy(serving_namespaces: list[str]) -> dict:
    """MinIO: MLflow's artifact proxy, the bucket Job, and KServe's storage-initializer in serving namespaces."""
    clients = [_from_pods("mlflow"), _from_pods("minio-create-bucket")]
    initializer = {"matchExpressions": [{"key": ISVC_LABEL, "operator": "Exists"}]}
    clients += [{**_from_namespace(ns), "podSelector": initializer} for ns in serving_namespaces]
    return _policy("minio-from-clients", {"matchLabels": selector("minio")}, clients, 9000)


QUEUE_PROXY_PORT = 8012  # Knative's queue-proxy sidecar in front of a Serverless predictor


def serving_network_policies(cfg: Config, serverless: bool = False) -> list[dict]:
    """A serving namespace: predictors answer the ingress controller and Prometheus only.

    Serverless (Knative) predictors are reached through the activator and gateways on the
    queue-proxy port; the queue-proxy forwards to 8080 over the pod's loopback.
    """
    predictors = {"matchExpressions": [{"key": ISVC_LABEL, "operator": "Exists"}]}
    policies = [_deny_all(), _policy("serving-from-ingress", predictors,
                                     [from_ingress_controller(cfg), from_prometheus(cfg)], 8080)]
    if serverless:
        policies.append(_policy("serving-from-knative", predictors,
                                [_from_namespace(ns) for ns in cfg.network["knative_namespaces"]], QUEUE_PROXY_PORT))
    return policies
