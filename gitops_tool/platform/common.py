"""Shared building blocks: labels, security contexts, Secret names."""

from __future__ import annotations

from typing import Any

# Every Secret the platform reads, by name. Values never live in Git: the README
# (and `gitops-tool secrets`) say how each is created. Keys are what pods read.
SECRETS: dict[str, dict[str, Any]] = {
    "postgres-credentials": {"keys": ["POSTGRES_USER", "POSTGRES_PASSWORD"], "used_by": "PostgreSQL"},
    "minio-credentials": {"keys": ["MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD"], "used_by": "MinIO, MLflow, bucket Job"},
    "mlflow-backend": {"keys": ["backend-store-uri"], "used_by": "MLflow (postgresql+psycopg2://USER:PASSWORD@postgres:5432/DB)"},
    "mlflow-keys": {"keys": ["flask-secret-key", "webhook-encryption-key"],
                    "used_by": "MLflow (Flask session key; Fernet key for stored webhook secrets)"},
    "mlflow-basic-auth": {"keys": ["auth"], "used_by": "the edge: nginx Ingress (key auth) or Envoy Gateway (key .htpasswd)"},
    "gitops-webhook": {"keys": ["hmac-secret"], "used_by": "webhook receiver and MLflow's webhook (HMAC)"},
    "gitops-git-credentials": {"keys": ["token"], "used_by": "webhook receiver, promote mode (push)"},
    "gitops-github-token": {"keys": ["token"], "used_by": "webhook receiver, dispatch mode"},
    "gitops-argocd-token": {"keys": ["token"], "used_by": "webhook receiver, argocd.refresh: api (Argo CD API token)"},
    "kserve-s3-credentials": {"keys": ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
                              "used_by": "KServe storage-initializer (storage-mode models only)"},
}

# Sync waves: data stores first, then the bucket and migration Jobs, then MLflow, then what depends on it.
WAVE = {"data": "0", "bucket": "1", "migrate": "1", "mlflow": "2", "edge": "3", "serving": "4"}

# Fixed high UIDs (>= 10000) so no container shares a UID with a host account.
UID = {"postgres": 10432, "minio": 10900, "mlflow": 10001, "job": 10002, "serving": 10003}

# checkov skips, each justified where it applies (docs/security.md lists them).
SKIP_SECRET_ENV = ("CKV_K8S_35=MLflow, boto3, PostgreSQL and MinIO read these credentials from environment "
                   "variables; the values come from secretKeyRef and never appear in a manifest")
SKIP_DIGEST = ("CKV_K8S_43=pinned to a version tag; give name@sha256:... under images: in gitops.yaml "
               "to pin by digest (digests must come from your own registry)")


def policy_annotations(pod_spec: dict) -> dict[str, str]:
    """The checkov skips this workload needs, and only those."""
    containers = pod_spec.get("containers", []) + pod_spec.get("initContainers", [])
    skips = []
    if any("secretKeyRef" in str(c.get("env", [])) for c in containers):
        skips.append(SKIP_SECRET_ENV)
    if any("@sha256:" not in c.get("image", "") for c in containers):
        skips.append(SKIP_DIGEST)
    return {f"checkov.io/skip{i}": reason for i, reason in enumerate(skips, 1)}


def harden(doc: dict) -> dict:
    """Always pull (tags can move; a digest re-check is cheap) and annotate the justified skips."""
    template = doc.get("spec", {}).get("template", {}).get("spec")
    if doc.get("kind") not in ("Deployment", "StatefulSet", "Job", "DaemonSet") or not template:
        return doc
    for container in template.get("containers", []) + template.get("initContainers", []):
        container.setdefault("imagePullPolicy", "Always")
    annotations = policy_annotations(template)
    if annotations:
        doc["metadata"].setdefault("annotations", {}).update(annotations)
    return doc


def labels(name: str, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, "app.kubernetes.io/component": component}


def selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name}


def metadata(name: str, component: str, *, wave: str | None = None, extra: dict | None = None) -> dict:
    meta: dict[str, Any] = {"name": name, "labels": labels(name, component)}
    annotations = dict(extra or {})
    if wave is not None:
        annotations["argocd.argoproj.io/sync-wave"] = wave
    if annotations:
        meta["annotations"] = annotations
    return meta


def pod_security(uid: int) -> dict:
    return {
        "runAsNonRoot": True,
        "runAsUser": uid,
        "runAsGroup": uid,
        "fsGroup": uid,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security() -> dict:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def secret_env(name: str, secret: str, key: str) -> dict:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}}


def scratch_volumes(*names: str) -> list[dict]:
    """emptyDirs for the paths a process must write to under a read-only root filesystem."""
    return [{"name": n, "emptyDir": {}} for n in names]


def resources(spec: dict) -> dict:
    return {
        "requests": {k: str(v) for k, v in spec["requests"].items()},
        "limits": {k: str(v) for k, v in spec["limits"].items()},
    }


def hook_job(name: str, component: str, *, wave: str, hook: str, container: dict, backoff_limit: int,
             extra_volumes: list[dict] | None = None) -> dict:
    """A one-shot Argo CD hook Job (recreated on every sync), hardened like every other workload.

    The container gets the shared security context and a writable /tmp; pass its own mounts beyond that.
    """
    meta = metadata(name, component, wave=wave, extra={
        "argocd.argoproj.io/hook": hook,
        "argocd.argoproj.io/hook-delete-policy": "BeforeHookCreation",
    })
    container = {**container, "securityContext": container_security(),
                 "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}, *container.get("volumeMounts", [])]}
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": meta,
        "spec": {
            "backoffLimit": backoff_limit,
            "activeDeadlineSeconds": 900,
            "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": meta["labels"]},
                "spec": {
                    "restartPolicy": "OnFailure",
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(UID["job"]),
                    "containers": [container],
                    "volumes": scratch_volumes("tmp") + (extra_volumes or []),
                },
            },
        },
    }
