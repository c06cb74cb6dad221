"""Typed view of gitops.yaml with defaults applied, plus the checks a schema cannot express."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from gitops_tool.config.model_checks import check_model
from gitops_tool.errors import GitopsError

DEFAULT_IMAGES = {
    # -full carries psycopg2, boto3 and prometheus-flask-exporter (mlflow[extras,db,auth]).
    "mlflow": "ghcr.io/mlflow/mlflow:v3.17.2-full",
    "postgres": "docker.io/library/postgres:15.10-bookworm",
    "minio": "quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z",
    "minio_client": "quay.io/minio/mc:RELEASE.2025-04-16T18-13-26Z",
    # Built from this repository's Dockerfile; publish it under your own registry.
    "gitops_tool": "ghcr.io/example-org/gitops-tool:0.1.0",
}
DEFAULT_MLFLOW_RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
DEFAULT_SECRETS = {"method": "external", "overrides": {}, "store": "platform-secrets",
                   "store_kind": "ClusterSecretStore", "remote_prefix": "", "refresh_interval": "1h", "scope": "strict"}
DEFAULT_MODEL_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}


@dataclass(frozen=True)
class Environment:
    name: str
    namespace: str
    host: str
    replicas: int = 1
    resources: dict = field(default_factory=lambda: DEFAULT_MLFLOW_RESOURCES)
    postgres_storage: str = "10Gi"
    minio_storage: str = "20Gi"
    storage_class: str | None = None
    tls_enabled: bool = False
    tls_secret: str = "mlflow-tls"
    tls_cluster_issuer: str | None = None
    basic_auth: bool = True
    autoscaling: dict | None = None
    secrets: dict = field(default_factory=lambda: dict(DEFAULT_SECRETS))

    def secret_method(self, secret: str) -> str:
        return self.secrets["overrides"].get(secret, self.secrets["method"])


@dataclass(frozen=True)
class Model:
    name: str
    registered_model: str
    aliases: dict[str, str]
    mode: str = "image"
    image_repository: str | None = None
    image_template: str = "{repository}:{version}"
    resources: dict = field(default_factory=lambda: DEFAULT_MODEL_RESOURCES)
    min_replicas: int = 1
    max_replicas: int = 3
    gates: dict = field(default_factory=dict)

    def env_for_alias(self, alias: str) -> str | None:
        return self.aliases.get(alias)


@dataclass(frozen=True)
class Config:
    source: str
    root: Path
    project: str
    repo_url: str
    branch: str
    remote: str
    argocd_namespace: str
    destination_server: str
    ingress_namespace: str
    monitoring_namespace: str
    images: dict[str, str]
    mlflow: dict[str, Any]
    receiver: dict[str, Any]
    environments: dict[str, Environment]
    models: dict[str, Model]

    def env(self, name: str) -> Environment:
        try:
            return self.environments[name]
        except KeyError:
            raise GitopsError(
                f"{self.source}: environment {name!r} is not defined (known: {', '.join(self.environments)})"
            ) from None

    def model(self, name: str) -> Model:
        for model in self.models.values():
            if name in (model.name, model.registered_model):
                return model
        raise GitopsError(f"{self.source}: model {name!r} is not defined (known: {', '.join(self.models) or 'none'})")

    def env_dir(self, env: str) -> Path:
        return self.root / "environments" / env


def build_config(raw: dict, *, source: str, root: Path, line_of: Callable[[list], int | None]) -> Config:
    def where(path: list) -> str:
        return f"{source}:{line_of(path) or 1} {'.'.join(str(p) for p in path)}"

    envs = {name: _environment(name, spec, where) for name, spec in raw["environments"].items()}
    models = {name: _model(name, spec, envs, where) for name, spec in (raw.get("models") or {}).items()}
    namespaces = [e.namespace for e in envs.values()]
    if len(set(namespaces)) != len(namespaces):
        raise GitopsError(f"{where(['environments'])}: each environment needs its own namespace, got {namespaces}")
    repo, argocd, network = raw["repo"], raw.get("argocd", {}), raw.get("network", {})
    mlflow = {
        "tracking_uri": None, "artifacts_bucket": "mlflow-artifacts", "workers": 2, "port": 5000,
        "database": "mlflow", "extra_allowed_hosts": [], "max_body_size": "1024m",
    } | raw.get("mlflow", {})
    receiver = {"enabled": True, "mode": "promote", "github_repository": None, "port": 8080} | raw.get("receiver", {})
    if receiver["mode"] == "dispatch" and not receiver["github_repository"]:
        raise GitopsError(f"{where(['receiver', 'mode'])}: dispatch mode needs receiver.github_repository (owner/name)")
    return Config(
        source=source, root=root, project=raw["project"],
        repo_url=repo["url"], branch=repo.get("branch", "main"), remote=repo.get("remote", "origin"),
        argocd_namespace=argocd.get("namespace", "argocd"),
        destination_server=argocd.get("destination_server", "https://kubernetes.default.svc"),
        ingress_namespace=network.get("ingress_namespace", "ingress-nginx"),
        monitoring_namespace=network.get("monitoring_namespace", "monitoring"),
        images=DEFAULT_IMAGES | raw.get("images", {}), mlflow=mlflow, receiver=receiver, environments=envs, models=models,
    )


def _environment(name: str, spec: dict, where: Callable) -> Environment:
    storage, tls = spec.get("storage", {}), spec.get("tls", {"enabled": False})
    scaling = spec.get("autoscaling")
    if scaling and scaling["min_replicas"] > scaling["max_replicas"]:
        raise GitopsError(
            f"{where(['environments', name, 'autoscaling'])}: min_replicas {scaling['min_replicas']} "
            f"is greater than max_replicas {scaling['max_replicas']}"
        )
    secrets = DEFAULT_SECRETS | spec.get("secrets", {})
    methods = {secrets["method"], *secrets["overrides"].values()}
    if "local" in methods and not name.startswith("dev"):
        raise GitopsError(
            f"{where(['environments', name, 'secrets'])}: method 'local' reads git-ignored files and is for dev "
            f"environments only (names starting with 'dev'); use external or sealed for {name}"
        )
    return Environment(
        name=name, namespace=spec["namespace"], secrets=secrets, host=spec["host"], replicas=spec.get("replicas", 1),
        resources=spec.get("resources", DEFAULT_MLFLOW_RESOURCES),
        postgres_storage=str(storage.get("postgres", "10Gi")), minio_storage=str(storage.get("minio", "20Gi")),
        storage_class=storage.get("storage_class"), tls_enabled=tls["enabled"],
        tls_secret=tls.get("secret_name", "mlflow-tls"), tls_cluster_issuer=tls.get("cluster_issuer"),
        basic_auth=spec.get("basic_auth", True),
        autoscaling=({"target_cpu_utilization": 70} | scaling) if scaling else None,
    )


def _model(name: str, spec: dict, envs: dict[str, Environment], where: Callable) -> Model:
    check_model(name, spec, envs, where)
    for alias, env in spec["aliases"].items():
        if env not in envs:
            raise GitopsError(
                f"{where(['models', name, 'aliases', alias])}: alias {alias!r} maps to unknown environment "
                f"{env!r} (known: {', '.join(envs)})"
            )
    gates = spec.get("gates", {})
    for env, before in gates.get("require_previous_stage", {}).items():
        for stage in (env, before):
            if stage not in envs:
                raise GitopsError(
                    f"{where(['models', name, 'gates', 'require_previous_stage', env])}: unknown environment {stage!r}"
                )
    if spec.get("min_replicas", 1) > spec.get("max_replicas", 3):
        raise GitopsError(f"{where(['models', name, 'min_replicas'])}: min_replicas is greater than max_replicas")
    return Model(
        name=name, registered_model=spec.get("registered_model", name), aliases=dict(spec["aliases"]),
        mode=spec.get("mode", "image"), image_repository=spec.get("image_repository"),
        image_template=spec.get("image_template", "{repository}:{version}"),
        resources=spec.get("resources", DEFAULT_MODEL_RESOURCES), min_replicas=spec.get("min_replicas", 1),
        max_replicas=spec.get("max_replicas", 3), gates=gates,
    )
