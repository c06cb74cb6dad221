"""Typed view of gitops.yaml (apiVersion gitops-tool/v2) with defaults applied.

Two separate parts: `platform` (the MLflow stack; exactly one instance is the registry of
record) and `environments` (serving targets where KServe runs the promoted models).
config/build.py turns the checked YAML into these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitops_tool import __version__
from gitops_tool.errors import GitopsError

IN_CLUSTER = "in-cluster"
IN_CLUSTER_SERVER = "https://kubernetes.default.svc"
PLATFORM_DIR = "platform"  # environments/platform/<instance>/: reserved, no serving environment may take it

DEFAULT_IMAGES = {
    # -full carries psycopg2, boto3 and prometheus-flask-exporter (mlflow[extras,db,auth]).
    "mlflow": "ghcr.io/mlflow/mlflow:v3.17.2-full",
    "postgres": "docker.io/library/postgres:15.10-bookworm",
    "minio": "quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z",
    "minio_client": "quay.io/minio/mc:RELEASE.2025-04-16T18-13-26Z",
    # Built from this repository's Dockerfile; publish it under your own registry.
    "gitops_tool": f"ghcr.io/example-org/gitops-tool:{__version__}",
}
DEFAULT_MLFLOW_RESOURCES = {"requests": {"cpu": "250m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
DEFAULT_SECRETS = {"method": "external", "overrides": {}, "store": "platform-secrets",
                   "store_kind": "ClusterSecretStore", "remote_prefix": "", "refresh_interval": "1h", "scope": "strict"}
DEFAULT_MODEL_RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
SCALE_TO_ZERO_MODES = ("Serverless",)  # KServe Standard/RawDeployment keeps at least one pod


@dataclass(frozen=True)
class Destination:
    """An Argo CD destination cluster: the name gitops.yaml uses and the API server URL."""
    name: str
    server: str


@dataclass(frozen=True)
class ObjectStore:
    kind: str                      # minio | external
    bucket: str = "mlflow-artifacts"
    endpoint: str | None = None    # external: the S3 endpoint URL
    public_endpoint: str | None = None  # minio: what other clusters reach it at
    region: str = "us-east-1"
    verify_tls: bool = True
    credentials_secret: str | None = None

    @property
    def secret(self) -> str:
        """The Secret with the S3 credentials MLflow (and the bucket Job) read."""
        return "minio-credentials" if self.kind == "minio" else str(self.credentials_secret)

    @property
    def keys(self) -> tuple[str, str]:
        return ("MINIO_ROOT_USER", "MINIO_ROOT_PASSWORD") if self.kind == "minio" else (
            "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")

    def endpoint_for(self, namespace: str, same_cluster: bool = True) -> str | None:
        """The S3 endpoint URL as seen from a pod, or None when that cluster cannot reach it."""
        if self.kind == "external":
            return self.endpoint
        if same_cluster:
            return f"http://minio.{namespace}.svc.cluster.local:9000"
        return self.public_endpoint


@dataclass(frozen=True)
class PlatformInstance:
    """One MLflow stack: PostgreSQL, the object store, MLflow, its Ingress and monitoring."""
    name: str
    namespace: str
    cluster: Destination
    host: str
    object_store: ObjectStore
    workers: int = 2
    registry_of_record: bool = False
    replicas: int = 1
    resources: dict = field(default_factory=lambda: DEFAULT_MLFLOW_RESOURCES)
    postgres_storage: str = "10Gi"
    object_store_storage: str = "20Gi"
    storage_class: str | None = None
    tls_enabled: bool = False
    tls_secret: str = "mlflow-tls"
    tls_cluster_issuer: str | None = None
    tls_issuer: str | None = None       # a namespaced cert-manager Issuer
    basic_auth: bool = True
    autoscaling: dict | None = None
    secrets: dict = field(default_factory=lambda: dict(DEFAULT_SECRETS))

    def secret_method(self, secret: str) -> str:
        return self.secrets["overrides"].get(secret, self.secrets["method"])

    @property
    def rel_dir(self) -> str:
        return f"environments/{PLATFORM_DIR}/{self.name}"

    @property
    def label(self) -> str:
        return f"{PLATFORM_DIR}/{self.name}"


@dataclass(frozen=True)
class Serving:
    mode: str = "Standard"
    min_replicas: int = 1
    max_replicas: int = 3
    resources: dict = field(default_factory=lambda: DEFAULT_MODEL_RESOURCES)
    models: tuple[str, ...] | None = None  # None: every model


@dataclass(frozen=True)
class Environment:
    """A serving target: a namespace on some cluster where KServe runs promoted models."""
    name: str
    namespace: str
    cluster: Destination
    serving: Serving = field(default_factory=Serving)
    secrets: dict = field(default_factory=lambda: dict(DEFAULT_SECRETS))
    production: bool = False
    approval: str = "direct"       # direct | pull_request (config/approval.py)
    soak_seconds: int | None = None     # how long a version serves here before the next stage takes it
    verify: Any = None                  # config.stage_checks.Verify: PromQL checks over this environment

    def secret_method(self, secret: str) -> str:
        return self.secrets["overrides"].get(secret, self.secrets["method"])

    def may_serve(self, model: str) -> bool:
        return self.serving.models is None or model in self.serving.models

    @property
    def rel_dir(self) -> str:
        return f"environments/{self.name}"

    @property
    def label(self) -> str:
        return self.name


@dataclass(frozen=True)
class Model:
    name: str
    registered_model: str
    aliases: dict[str, str]
    mode: str = "image"
    image_repository: str | None = None
    image_template: str = "{repository}:{version}"
    resources: dict | None = None  # None: each environment's serving.resources
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
    clusters: dict[str, str]
    ingress_namespace: str
    monitoring_namespace: str
    network: dict[str, Any]         # NETWORK_DEFAULTS (config/build.py) | gitops.yaml network
    images: dict[str, str]
    mlflow: dict[str, Any]          # shared MLflow settings, tracking_uri = the registry of record
    receiver: dict[str, Any]
    platform: dict[str, PlatformInstance]
    environments: dict[str, Environment]
    models: dict[str, Model]
    # How the generated workflows get gitops-tool (gitops.yaml `tool:`); see gitops_tool/platform/workflows.py.
    tool: dict[str, Any] = field(default_factory=dict)
    # platform.edge: kind ingress-nginx | gateway-api (+ implementation, gateway, proxy_namespace)
    edge: dict[str, Any] = field(default_factory=lambda: {"kind": "ingress-nginx"})
    github_repository: str | None = None  # owner/name: where pull_request environments open PRs
    # argocd.refresh / argocd.api_url: how a push asks Argo CD to refresh (gitops_tool/cluster/refresh.py)
    argocd_refresh: dict[str, Any] = field(default_factory=lambda: {"mode": "annotation", "api_url": None})

    @property
    def registry(self) -> PlatformInstance:
        """The registry-of-record instance: the only one that promotes."""
        return next(p for p in self.platform.values() if p.registry_of_record)

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

    def platform_dir(self, instance: str) -> Path:
        return self.root / "environments" / PLATFORM_DIR / instance

    def targets(self) -> list[PlatformInstance | Environment]:
        """Everything Argo CD syncs: the platform instances, then the serving environments."""
        return [*self.platform.values(), *self.environments.values()]

    def target(self, label: str) -> PlatformInstance | Environment:
        """An overlay by label: `platform/<instance>` or a serving environment's name."""
        for target in self.targets():
            if label == target.label:
                return target
        known = ", ".join(t.label for t in self.targets())
        raise GitopsError(f"{self.source}: no platform instance or environment {label!r} (known: {known})")

    def model_resources(self, model: Model, env: Environment) -> dict:
        return model.resources or env.serving.resources
