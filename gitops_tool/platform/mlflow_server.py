"""The MLflow tracking server and registry: Deployment, Service, PodDisruptionBudget."""

from __future__ import annotations

from gitops_tool.config import Config, Environment
from gitops_tool.platform.common import (
    UID, WAVE, container_security, labels, metadata, pod_security, resources, scratch_volumes, secret_env,
    selector,
)

PROMETHEUS_DIR = "/tmp/prometheus"
# MLflow matches the Host header literally (with the port), and checks /metrics too: Prometheus
# scrapes by pod IP, so the private ranges MLflow allows by default must stay allowed.
POD_IP_HOSTS = ["10.*", *[f"172.{i}.*" for i in range(16, 32)], "192.168.*"]


def allowed_hosts(cfg: Config, env: Environment) -> str:
    port = cfg.mlflow["port"]
    ns = env.namespace
    names = ["mlflow", f"mlflow.{ns}", f"mlflow.{ns}.svc", f"mlflow.{ns}.svc.cluster.local"]
    hosts = [env.host, f"{env.host}:443", f"{env.host}:80"]
    hosts += [h for name in names for h in (name, f"{name}:{port}")]
    hosts += list(cfg.mlflow["extra_allowed_hosts"]) + POD_IP_HOSTS
    return ",".join(hosts)


def _env(cfg: Config) -> list[dict]:
    bucket = cfg.mlflow["artifacts_bucket"]
    return [
        secret_env("MLFLOW_BACKEND_STORE_URI", "mlflow-backend", "backend-store-uri"),
        {"name": "MLFLOW_ARTIFACTS_DESTINATION", "value": f"s3://{bucket}"},
        {"name": "MLFLOW_S3_ENDPOINT_URL", "value": "http://minio:9000"},
        secret_env("AWS_ACCESS_KEY_ID", "minio-credentials", "MINIO_ROOT_USER"),
        secret_env("AWS_SECRET_ACCESS_KEY", "minio-credentials", "MINIO_ROOT_PASSWORD"),
        # Set per environment by the overlay (ingress host + in-cluster Service names).
        {"name": "MLFLOW_SERVER_ALLOWED_HOSTS", "value": "mlflow"},
        # One fixed key for every replica and restart, or stored webhook secrets become unreadable.
        secret_env("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY", "mlflow-keys", "webhook-encryption-key"),
        # Flask session signing: the same key on every replica, so sessions survive load balancing.
        secret_env("MLFLOW_FLASK_SERVER_SECRET_KEY", "mlflow-keys", "flask-secret-key"),
        # The in-cluster receiver is plain http on a private Service IP, which MLflow refuses by default.
        {"name": "MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "value": "http,https"},
        {"name": "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "value": "true"},
        {"name": "HOME", "value": "/tmp"},
    ]


def _server_container(cfg: Config) -> dict:
    port = cfg.mlflow["port"]
    return {
        "name": "mlflow",
        "image": cfg.images["mlflow"],
        "command": ["mlflow", "server"],
        "args": [
            "--host", "0.0.0.0", "--port", str(port),
            "--workers", str(cfg.mlflow["workers"]),
            # The backend store URI (it holds the DB password) comes from the env var
            # MLFLOW_BACKEND_STORE_URI, so it never shows in the process list.
            "--artifacts-destination", f"s3://{cfg.mlflow['artifacts_bucket']}",
            "--serve-artifacts",
            "--expose-prometheus", PROMETHEUS_DIR,
            "--allowed-hosts", "$(MLFLOW_SERVER_ALLOWED_HOSTS)",
        ],
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": _env(cfg),
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "2Gi"}},
        "startupProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 5, "failureThreshold": 36},
        "readinessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 5},
        "livenessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 20, "timeoutSeconds": 5,
                          "failureThreshold": 6},
        "securityContext": container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def _upgrade_container(cfg: Config) -> dict:
    # Schema migrations run before any server process starts; `mlflow db upgrade` is a no-op when current.
    return {
        "name": "db-upgrade",
        "image": cfg.images["mlflow"],
        "command": ["mlflow", "db", "upgrade", "$(MLFLOW_BACKEND_STORE_URI)"],
        "env": [secret_env("MLFLOW_BACKEND_STORE_URI", "mlflow-backend", "backend-store-uri"),
                {"name": "HOME", "value": "/tmp"}],
        "resources": {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
        "securityContext": container_security(),
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }


def mlflow(cfg: Config) -> list[dict]:
    port = cfg.mlflow["port"]
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": metadata("mlflow", "tracking-server", wave=WAVE["mlflow"]),
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector("mlflow")},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "template": {
                "metadata": {"labels": labels("mlflow", "tracking-server")},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(UID["mlflow"]),
                    "initContainers": [_upgrade_container(cfg)],
                    "containers": [_server_container(cfg)],
                    "volumes": scratch_volumes("tmp"),
                },
            },
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service",
        # The `metrics` label is what the ServiceMonitor selects.
        "metadata": {**metadata("mlflow", "tracking-server", wave=WAVE["mlflow"]),
                     "labels": labels("mlflow", "tracking-server") | {"gitops-tool.io/metrics": "mlflow"}},
        "spec": {
            "selector": selector("mlflow"),
            "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}],
        },
    }
    pdb = {
        "apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": metadata("mlflow", "tracking-server", wave=WAVE["mlflow"]),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector("mlflow")}},
    }
    return [deployment, service, pdb]


def mlflow_env_patch(cfg: Config, env: Environment) -> dict:
    """Overlay patch: replicas (unless autoscaled), resources and the allowed hosts."""
    container = {
        "name": "mlflow",
        "resources": resources(env.resources),
        "env": [{"name": "MLFLOW_SERVER_ALLOWED_HOSTS", "value": allowed_hosts(cfg, env)}],
    }
    # With an HPA the Deployment must not pin replicas, or every sync would fight the autoscaler.
    replicas = None if env.autoscaling else env.replicas
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "mlflow"},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [container]}}},
    }


def mlflow_hpa(env: Environment) -> dict:
    scaling = env.autoscaling or {}
    return {
        "apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
        "metadata": metadata("mlflow", "tracking-server", wave=WAVE["mlflow"]),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "mlflow"},
            "minReplicas": scaling.get("min_replicas", 1),
            "maxReplicas": scaling.get("max_replicas", 1),
            "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {
                "type": "Utilization", "averageUtilization": scaling.get("target_cpu_utilization", 70)}}}],
        },
    }
