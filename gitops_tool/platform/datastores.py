"""PostgreSQL (metadata) and MinIO (artifacts): StatefulSets, Services and the bucket Job."""

from __future__ import annotations

from gitops_tool.config import Config
from gitops_tool.platform.common import (
    UID, WAVE, container_security, hook_job, metadata, pod_security, scratch_volumes, secret_env, selector,
)

PG_PORT = 5432
MINIO_API_PORT = 9000
MINIO_CONSOLE_PORT = 9001
BASE_STORAGE = "10Gi"  # overlays set the real size per environment


def pvc_template(name: str, size: str, storage_class: str | None = None) -> dict:
    spec: dict = {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": size}}}
    if storage_class:
        spec["storageClassName"] = storage_class
    return {"metadata": {"name": name}, "spec": spec}


def postgres(cfg: Config) -> list[dict]:
    db = cfg.mlflow["database"]
    ready = ["sh", "-c", 'exec pg_isready -h 127.0.0.1 -p 5432 -U "$POSTGRES_USER" -d "$POSTGRES_DB"']
    container = {
        "name": "postgres",
        "image": cfg.images["postgres"],
        "ports": [{"name": "postgres", "containerPort": PG_PORT, "protocol": "TCP"}],
        "env": [
            secret_env("POSTGRES_USER", "postgres-credentials", "POSTGRES_USER"),
            secret_env("POSTGRES_PASSWORD", "postgres-credentials", "POSTGRES_PASSWORD"),
            {"name": "POSTGRES_DB", "value": db},
            # A subdirectory: the volume's root holds lost+found, which initdb refuses.
            {"name": "PGDATA", "value": "/var/lib/postgresql/data/pgdata"},
        ],
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
        "startupProbe": {"exec": {"command": ready}, "periodSeconds": 5, "failureThreshold": 60},
        "readinessProbe": {"exec": {"command": ready}, "periodSeconds": 10, "timeoutSeconds": 5},
        "livenessProbe": {"exec": {"command": ready}, "periodSeconds": 20, "timeoutSeconds": 5, "failureThreshold": 6},
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "data", "mountPath": "/var/lib/postgresql/data"},
            {"name": "run", "mountPath": "/var/run/postgresql"},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": metadata("postgres", "metadata-store", wave=WAVE["data"]),
        "spec": {
            "clusterIP": "None",  # headless: stable DNS for the StatefulSet pod
            "selector": selector("postgres"),
            "ports": [{"name": "postgres", "port": PG_PORT, "targetPort": "postgres", "protocol": "TCP"}],
        },
    }
    statefulset = {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": metadata("postgres", "metadata-store", wave=WAVE["data"]),
        "spec": {
            "serviceName": "postgres",
            "replicas": 1,
            "selector": {"matchLabels": selector("postgres")},
            "template": {
                "metadata": {"labels": metadata("postgres", "metadata-store")["labels"]},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(UID["postgres"]),
                    "terminationGracePeriodSeconds": 60,
                    "containers": [container],
                    "volumes": scratch_volumes("run", "tmp"),
                },
            },
            "volumeClaimTemplates": [pvc_template("data", BASE_STORAGE)],
        },
    }
    return [service, statefulset]


def minio(cfg: Config) -> list[dict]:
    probe = {"httpGet": {"path": "/minio/health/live", "port": "api"}, "periodSeconds": 15, "timeoutSeconds": 5}
    container = {
        "name": "minio",
        "image": cfg.images["minio"],
        "args": ["server", "/data", "--address", f":{MINIO_API_PORT}", "--console-address",
                 f":{MINIO_CONSOLE_PORT}", "--certs-dir", "/tmp/certs"],
        "ports": [
            {"name": "api", "containerPort": MINIO_API_PORT, "protocol": "TCP"},
            {"name": "console", "containerPort": MINIO_CONSOLE_PORT, "protocol": "TCP"},
        ],
        "env": [
            secret_env("MINIO_ROOT_USER", "minio-credentials", "MINIO_ROOT_USER"),
            secret_env("MINIO_ROOT_PASSWORD", "minio-credentials", "MINIO_ROOT_PASSWORD"),
            {"name": "HOME", "value": "/tmp"},
        ],
        "resources": {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "2", "memory": "2Gi"}},
        "readinessProbe": {"httpGet": {"path": "/minio/health/ready", "port": "api"}, "periodSeconds": 10,
                           "timeoutSeconds": 5},
        "livenessProbe": probe,
        "securityContext": container_security(),
        "volumeMounts": [{"name": "data", "mountPath": "/data"}, {"name": "tmp", "mountPath": "/tmp"}],
    }
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": metadata("minio", "artifact-store", wave=WAVE["data"]),
        "spec": {
            "selector": selector("minio"),
            "ports": [
                {"name": "api", "port": MINIO_API_PORT, "targetPort": "api", "protocol": "TCP"},
                {"name": "console", "port": MINIO_CONSOLE_PORT, "targetPort": "console", "protocol": "TCP"},
            ],
        },
    }
    statefulset = {
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": metadata("minio", "artifact-store", wave=WAVE["data"]),
        "spec": {
            "serviceName": "minio",
            "replicas": 1,
            "selector": {"matchLabels": selector("minio")},
            "template": {
                "metadata": {"labels": metadata("minio", "artifact-store")["labels"]},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(UID["minio"]),
                    "containers": [container],
                    "volumes": scratch_volumes("tmp"),
                },
            },
            "volumeClaimTemplates": [pvc_template("data", BASE_STORAGE)],
        },
    }
    return [service, statefulset, bucket_job(cfg)]


def bucket_job_patch(bucket: str) -> dict:
    container = {"name": "create-bucket", "env": [{"name": "BUCKET", "value": bucket}]}
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "minio-create-bucket"},
            "spec": {"template": {"spec": {"containers": [container]}}}}


def bucket_job(cfg: Config) -> dict:
    """Creates the artifact bucket. Idempotent (`mc mb --ignore-existing`), re-run on every sync as a hook.

    BUCKET is set by each platform instance's overlay (generated/minio.yaml).
    """
    script = (
        "set -eu\n"
        "until mc alias set platform http://minio:9000 \"$MINIO_ROOT_USER\" \"$MINIO_ROOT_PASSWORD\"; do\n"
        "  echo waiting for minio; sleep 5\n"
        "done\n"
        'mc mb --ignore-existing "platform/$BUCKET"\n'
    )
    return hook_job("minio-create-bucket", "artifact-store", wave=WAVE["bucket"], hook="Sync", backoff_limit=6,
                    container={
                        "name": "create-bucket",
                        "image": cfg.images["minio_client"],
                        "command": ["sh", "-c", script],
                        "env": [
                            secret_env("MINIO_ROOT_USER", "minio-credentials", "MINIO_ROOT_USER"),
                            secret_env("MINIO_ROOT_PASSWORD", "minio-credentials", "MINIO_ROOT_PASSWORD"),
                            {"name": "MC_CONFIG_DIR", "value": "/tmp/.mc"},
                            {"name": "BUCKET", "value": cfg.mlflow["artifacts_bucket"]},
                        ],
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                                      "limits": {"cpu": "200m", "memory": "128Mi"}},
                    })
