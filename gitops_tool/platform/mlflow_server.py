"""The MLflow tracking server and registry: Deployment, Service, PodDisruptionBudget."""

from __future__ import annotations

from gitops_tool.config import Config, PlatformInstance
from gitops_tool.platform.common import (
    UID, WAVE, container_security, hook_job, labels, metadata, pod_security, resources, scratch_volumes, secret_env,
    selector,
)

PROMETHEUS_DIR = "/tmp/prometheus"
# --allowed-hosts replaces MLflow's defaults, so they are restated here. MLflow matches the Host
# header with fnmatch (with the port) and checks /metrics too: Prometheus scrapes by pod IP.
LOCALHOST_HOSTS = ["localhost", "localhost:*", "127.0.0.1", "127.0.0.1:*", "[[]::1]", "[[]::1]:*"]  # port-forward
POD_IP_HOSTS = [
    "10.*", *[f"172.{i}.*" for i in range(16, 32)], "192.168.*",
    # CGNAT 100.64.0.0/10 (EKS custom networking, Tailscale, some CNIs): 100.64.* to 100.127.*
    "100.6[4-9].*", "100.[7-9][0-9].*", "100.1[01][0-9].*", "100.12[0-7].*",
    # IPv6 pod addresses arrive bracketed ([fd00::5]:5000); an IP literal cannot be a DNS-rebinding name.
    "[[]*]", "[[]*]:*",
]


def allowed_hosts(cfg: Config, env: PlatformInstance) -> str:
    port = cfg.mlflow["port"]
    ns = env.namespace
    names = ["mlflow", f"mlflow.{ns}", f"mlflow.{ns}.svc", f"mlflow.{ns}.svc.cluster.local"]
    hosts = [env.host, f"{env.host}:443", f"{env.host}:80"]
    hosts += [h for name in names for h in (name, f"{name}:{port}")]
    hosts += list(cfg.mlflow["extra_allowed_hosts"]) + LOCALHOST_HOSTS + POD_IP_HOSTS
    return ",".join(hosts)


def cors_origins(cfg: Config, env: PlatformInstance) -> str:
    """Origins whose browser writes MLflow accepts: the instance's UI through the Ingress, plus extras."""
    origins = [f"https://{env.host}"] + ([] if env.tls_enabled else [f"http://{env.host}"])
    return ",".join(origins + [o for o in cfg.mlflow["cors_allowed_origins"] if o not in origins])


def _env(cfg: Config) -> list[dict]:
    # The object store, the allowed hosts and the worker count are set per platform instance
    # by its overlay (generated/mlflow.yaml); see mlflow_env_patch.
    return [
        secret_env("MLFLOW_BACKEND_STORE_URI", "mlflow-backend", "backend-store-uri"),
        # One fixed key for every replica and restart, or stored webhook secrets become unreadable.
        secret_env("MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY", "mlflow-keys", "webhook-encryption-key"),
        # Flask session signing: the same key on every replica, so sessions survive load balancing.
        secret_env("MLFLOW_FLASK_SERVER_SECRET_KEY", "mlflow-keys", "flask-secret-key"),
        # The in-cluster receiver is plain http on a private Service IP, which MLflow refuses by default.
        {"name": "MLFLOW_WEBHOOK_ALLOWED_SCHEMES", "value": "http,https"},
        {"name": "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS", "value": "true"},
        # On by default in 3.17: a job runner and 7 huey consumers, OOM-killed at 1 GiB (config/sizing.py).
        {"name": "MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "value": str(bool(cfg.mlflow["job_execution"])).lower()},
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
            "--workers", "$(MLFLOW_SERVER_WORKERS)",
            # The backend store URI (it holds the DB password) comes from the env var
            # MLFLOW_BACKEND_STORE_URI, so it never shows in the process list.
            "--artifacts-destination", "$(MLFLOW_ARTIFACTS_DESTINATION)",
            "--serve-artifacts",
            "--expose-prometheus", PROMETHEUS_DIR,
            "--allowed-hosts", "$(MLFLOW_SERVER_ALLOWED_HOSTS)",
            "--cors-allowed-origins", "$(MLFLOW_SERVER_CORS_ALLOWED_ORIGINS)",
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


def migration_job(cfg: Config) -> dict:
    """`mlflow db upgrade`, once per sync, after PostgreSQL (wave 0) and before MLflow (wave 2).

    One Job, not an init container per replica: concurrent upgrades of an empty database race
    (two of three failed with a UniqueViolation, measured). A no-op when the schema is current.
    """
    job = hook_job("mlflow-db-upgrade", "tracking-server", wave=WAVE["migrate"], hook="Sync", backoff_limit=6,
                   container={
                       "name": "db-upgrade",
                       "image": cfg.images["mlflow"],
                       "command": ["mlflow", "db", "upgrade", "$(MLFLOW_BACKEND_STORE_URI)"],
                       "env": [secret_env("MLFLOW_BACKEND_STORE_URI", "mlflow-backend", "backend-store-uri"),
                               {"name": "HOME", "value": "/tmp"}],
                       "resources": {"requests": {"cpu": "100m", "memory": "256Mi"},
                                     "limits": {"cpu": "500m", "memory": "512Mi"}},
                   })
    job["spec"]["template"]["spec"]["securityContext"] = pod_security(UID["mlflow"])
    return job


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
    return [migration_job(cfg), deployment, service, pdb]


def object_store_env(env: PlatformInstance) -> list[dict]:
    """MLflow's artifact proxy settings: the same store KServe storage mode reads from."""
    store = env.object_store
    user, password = store.keys
    out = [
        {"name": "MLFLOW_ARTIFACTS_DESTINATION", "value": f"s3://{store.bucket}"},
        {"name": "MLFLOW_S3_ENDPOINT_URL", "value": store.endpoint_for(env.namespace)},
        {"name": "AWS_DEFAULT_REGION", "value": store.region},
        secret_env("AWS_ACCESS_KEY_ID", store.secret, user),
        secret_env("AWS_SECRET_ACCESS_KEY", store.secret, password),
    ]
    if not store.verify_tls:
        out.append({"name": "MLFLOW_S3_IGNORE_TLS", "value": "true"})
    return out


def mlflow_env_patch(cfg: Config, env: PlatformInstance) -> dict:
    """Overlay patch: replicas (unless autoscaled), resources, workers, allowed hosts and the object store."""
    container = {
        "name": "mlflow",
        "resources": resources(env.resources),
        "env": [{"name": "MLFLOW_SERVER_ALLOWED_HOSTS", "value": allowed_hosts(cfg, env)},
                {"name": "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS", "value": cors_origins(cfg, env)},
                {"name": "MLFLOW_SERVER_WORKERS", "value": str(env.workers)}, *object_store_env(env)],
    }
    # With an HPA the Deployment must not pin replicas, or every sync would fight the autoscaler.
    replicas = None if env.autoscaling else env.replicas
    return {
        "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "mlflow"},
        "spec": {"replicas": replicas, "template": {"spec": {"containers": [container]}}},
    }


def mlflow_hpa(env: PlatformInstance) -> dict:
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
