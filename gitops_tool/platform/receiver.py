"""The in-cluster MLflow webhook receiver (`gitops-tool webhook serve`) and the Job that registers it."""

from __future__ import annotations

from gitops_tool.config import Config
from gitops_tool.platform.edge import from_prometheus
from gitops_tool.platform.common import (
    UID, WAVE, container_security, hook_job, labels, metadata, pod_security, scratch_volumes, secret_env, selector,
)

NAME = "gitops-webhook"
SECRET_MOUNT = "/var/run/secrets/gitops-webhook"
# git reads the token from the environment at push time; nothing is written to disk or argv.
CREDENTIAL_HELPER = '!f() { echo username=x-access-token; echo "password=$GIT_TOKEN"; }; f'


def receiver_url(cfg: Config) -> str:
    return f"http://{NAME}:{cfg.receiver['port']}/webhooks/mlflow"


def _env(cfg: Config) -> list[dict]:
    env = [
        {"name": "MLFLOW_TRACKING_URI", "value": f"http://mlflow:{cfg.mlflow['port']}"},
        {"name": "HOME", "value": "/tmp"},
    ]
    if cfg.receiver["mode"] == "promote":
        env += [
            secret_env("GIT_TOKEN", "gitops-git-credentials", "token"),
            {"name": "GIT_CONFIG_COUNT", "value": "1"},
            {"name": "GIT_CONFIG_KEY_0", "value": "credential.helper"},
            {"name": "GIT_CONFIG_VALUE_0", "value": CREDENTIAL_HELPER},
        ]
        if any(e.approval == "pull_request" for e in cfg.environments.values()):
            # approval: pull_request environments: the same GitHub token opens and updates the pull requests.
            env.append(secret_env("GITHUB_TOKEN", "gitops-git-credentials", "token"))
        if cfg.argocd_refresh["mode"] == "api":  # the pod mounts no service account token: no annotation refresh
            env.append(secret_env("ARGOCD_AUTH_TOKEN", "gitops-argocd-token", "token"))
    else:
        env.append(secret_env("GITHUB_TOKEN", "gitops-github-token", "token"))
    return env


def _args(cfg: Config) -> list[str]:
    args = ["webhook", "serve", "--host", "0.0.0.0", "--port", str(cfg.receiver["port"]),
            "--mode", cfg.receiver["mode"], "--secret-file", f"{SECRET_MOUNT}/hmac-secret",
            "--config", "/etc/gitops-tool/gitops.yaml"]
    if cfg.receiver["mode"] == "promote":
        args += ["--repo-url", cfg.repo_url, "--branch", cfg.branch]
    else:
        args += ["--github-repository", cfg.receiver["github_repository"]]
    return args


def _probe(path: str, period: int) -> dict:
    return {"httpGet": {"path": path, "port": "http"}, "periodSeconds": period, "timeoutSeconds": 3}


def receiver(cfg: Config) -> list[dict]:
    port = cfg.receiver["port"]
    container = {
        "name": "receiver",
        "image": cfg.images["gitops_tool"],
        "command": ["gitops-tool"],
        "args": _args(cfg),
        "ports": [{"name": "http", "containerPort": port, "protocol": "TCP"}],
        "env": _env(cfg),
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"cpu": "500m", "memory": "512Mi"}},
        "readinessProbe": _probe("/readyz", 10),
        "livenessProbe": {**_probe("/healthz", 20), "failureThreshold": 3},
        "securityContext": container_security(),
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "hmac", "mountPath": SECRET_MOUNT, "readOnly": True},
            {"name": "config", "mountPath": "/etc/gitops-tool", "readOnly": True},
        ],
    }
    deployment = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": metadata(NAME, "webhook-receiver", wave=WAVE["edge"]),
        "spec": {
            # One replica: the receiver coalesces promotions per (model, environment) in memory.
            "replicas": 1,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector(NAME)},
            "template": {
                "metadata": {"labels": labels(NAME, "webhook-receiver")},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": pod_security(UID["job"]),
                    "containers": [container],
                    "volumes": scratch_volumes("tmp") + [
                        {"name": "hmac", "secret": {"secretName": "gitops-webhook"}},
                        {"name": "config", "configMap": {"name": "gitops-tool-config"}},
                    ],
                },
            },
        },
    }
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {**metadata(NAME, "webhook-receiver", wave=WAVE["edge"]),
                     "labels": labels(NAME, "webhook-receiver") | {"gitops-tool.io/metrics": "receiver"}},
        "spec": {"selector": selector(NAME),
                 "ports": [{"name": "http", "port": port, "targetPort": "http", "protocol": "TCP"}]},
    }
    return [deployment, service, register_job(cfg)]


def register_job(cfg: Config) -> dict:
    """Creates or updates MLflow's webhook to point at the receiver after every sync (idempotent by name)."""
    return hook_job(f"{NAME}-register", "webhook-receiver", wave=WAVE["edge"], hook="PostSync", backoff_limit=10,
                    container={
                        "name": "register",
                        "image": cfg.images["gitops_tool"],
                        "command": ["gitops-tool"],
                        "args": ["webhook", "register", "--url", receiver_url(cfg),
                                 "--secret-file", f"{SECRET_MOUNT}/hmac-secret"],
                        "env": [{"name": "MLFLOW_TRACKING_URI", "value": f"http://mlflow:{cfg.mlflow['port']}"},
                                {"name": "HOME", "value": "/tmp"}],
                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                                      "limits": {"cpu": "200m", "memory": "256Mi"}},
                        "volumeMounts": [{"name": "hmac", "mountPath": SECRET_MOUNT, "readOnly": True}],
                    },
                    extra_volumes=[{"name": "hmac", "secret": {"secretName": "gitops-webhook"}}])


def receiver_policy(cfg: Config) -> dict:
    """Only MLflow (deliveries) and Prometheus (/metrics) reach the receiver."""
    return {
        "apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy",
        "metadata": metadata(f"{NAME}-from-mlflow", "network-policy", wave=WAVE["data"]),
        "spec": {
            "podSelector": {"matchLabels": selector(NAME)},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": selector("mlflow")}}, from_prometheus(cfg)],
                         "ports": [{"protocol": "TCP", "port": cfg.receiver["port"]}]}],
        },
    }
