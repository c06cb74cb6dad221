"""Build the typed Config from schema-checked YAML, with the checks a schema cannot express.

Every error names the file, line and field: `gitops.yaml:42 environments.prod.cluster: ...`.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from gitops_tool import __version__
from gitops_tool.config.model import (
    DEFAULT_IMAGES, DEFAULT_MLFLOW_RESOURCES, DEFAULT_MODEL_RESOURCES, DEFAULT_SECRETS, IN_CLUSTER,
    IN_CLUSTER_SERVER, PLATFORM_DIR, SCALE_TO_ZERO_MODES, Config, Destination, Environment, Model, ObjectStore,
    PlatformInstance, Serving,
)
from gitops_tool.config.approval import approval_of, github_repository
from gitops_tool.config import stage_checks
from gitops_tool.config.model_checks import check_model
from gitops_tool.config.sizing import check_memory
from gitops_tool.errors import GitopsError

Where = Callable[[list], str]
MLFLOW_DEFAULTS = {"tracking_uri": None, "workers": 2, "port": 5000, "database": "mlflow",
                   "extra_allowed_hosts": [], "max_body_size": "1024m", "job_execution": False,
                   "cors_allowed_origins": []}
NETWORK_DEFAULTS = {"ingress_namespace": "ingress-nginx", "ingress_pod_labels": {"app.kubernetes.io/name": "ingress-nginx"},
                    "monitoring_namespace": "monitoring", "prometheus_pod_labels": {"app.kubernetes.io/name": "prometheus"},
                    "prometheus_selector": {"release": "kube-prometheus-stack"}, "knative_namespaces": ["knative-serving"]}
RECEIVER_DEFAULTS = {"enabled": True, "mode": "promote", "github_repository": None, "port": 8080}


def build_config(raw: dict, *, source: str, root: Path, line_of: Callable[[list], int | None]) -> Config:
    def where(path: list) -> str:
        return f"{source}:{line_of(path) or 1} {'.'.join(str(p) for p in path)}"

    argocd, network, platform = raw.get("argocd", {}), raw.get("network", {}), raw["platform"]
    clusters = {IN_CLUSTER: IN_CLUSTER_SERVER} | (argocd.get("clusters") or {})
    store = platform.get("object_store") or {}
    instances = {name: _instance(name, spec, store, platform, clusters, where)
                 for name, spec in platform["instances"].items()}
    instances = _registry_of_record(instances, platform["instances"], where)
    envs = {name: _environment(name, spec, clusters, where, raw["repo"]) for name, spec in raw["environments"].items()}
    models = {name: _model(name, spec, envs, where) for name, spec in (raw.get("models") or {}).items()}
    _unique_namespaces(instances, envs, where)
    registry = next(p for p in instances.values() if p.registry_of_record)
    _storage_reachable(registry, envs, models, where)
    receiver = RECEIVER_DEFAULTS | platform.get("receiver", {})
    if receiver["mode"] == "dispatch" and not receiver["github_repository"]:
        raise GitopsError(f"{where(['platform', 'receiver', 'mode'])}: dispatch mode needs "
                          "platform.receiver.github_repository (owner/name)")
    edge = _edge(platform.get("edge", {}), instances, where)
    mlflow = MLFLOW_DEFAULTS | platform.get("mlflow", {}) | {"tracking_uri": platform.get("tracking_uri")}
    mlflow["artifacts_bucket"] = registry.object_store.bucket
    for name, inst in instances.items():
        check_memory(inst, mlflow["job_execution"], where(["platform", "instances", name, "resources"]))
    network = NETWORK_DEFAULTS | network
    refresh = {"mode": argocd.get("refresh", "annotation"), "api_url": argocd.get("api_url")}
    if refresh["mode"] == "api" and not refresh["api_url"]:
        raise GitopsError(f"{where(['argocd', 'refresh'])}: api needs argocd.api_url (the Argo CD server URL)")
    repo = raw["repo"]
    return Config(
        source=source, root=root, project=raw["project"],
        repo_url=repo["url"], branch=repo.get("branch", "main"), remote=repo.get("remote", "origin"),
        github_repository=github_repository(repo),
        argocd_namespace=argocd.get("namespace", "argocd"), clusters=clusters,
        ingress_namespace=network["ingress_namespace"], monitoring_namespace=network["monitoring_namespace"],
        network=network,
        images=DEFAULT_IMAGES | raw.get("images", {}), mlflow=mlflow, receiver=receiver,
        platform=instances, environments=envs, models=models, edge=edge, argocd_refresh=refresh,
        tool={"package": f"gitops-tool=={__version__}", "run": "pip", "e2e_tests": None, "validate_strict": True}
        | raw.get("tool", {}),
    )


GATEWAY_IMPLEMENTATIONS = ("envoy-gateway",)  # basic auth is the implementation's policy, not Gateway API's


def _edge(spec: dict, instances: dict[str, PlatformInstance], where: Where) -> dict:
    edge = {"kind": "ingress-nginx", "implementation": "envoy-gateway", "gateway": None,
            "proxy_namespace": "envoy-gateway-system"} | spec
    if edge["kind"] != "gateway-api":
        return edge
    if edge["implementation"] not in GATEWAY_IMPLEMENTATIONS:
        raise GitopsError(f"{where(['platform', 'edge', 'implementation'])}: {edge['implementation']!r} is not "
                          f"supported: basic auth is rendered as Envoy Gateway's SecurityPolicy (supported: "
                          f"{', '.join(GATEWAY_IMPLEMENTATIONS)}); use kind: ingress-nginx otherwise")
    for name, inst in instances.items():
        if inst.tls_enabled:
            raise GitopsError(f"{where(['platform', 'instances', name, 'tls'])}: with edge kind gateway-api TLS "
                              "terminates at the Gateway's listener; set tls: {enabled: false} here and configure "
                              "the certificate on the Gateway")
    return edge


def _destination(value: str, clusters: dict[str, str], path: list, where: Where) -> Destination:
    if value in clusters:
        return Destination(value, clusters[value])
    for name, server in clusters.items():
        if value.rstrip("/") == server.rstrip("/"):
            return Destination(name, server)
    raise GitopsError(
        f"{where(path)}: cluster {value!r} is not one the AppProject allows; name it under argocd.clusters "
        f"(known: {', '.join(f'{n} ({s})' for n, s in clusters.items())})"
    )


def _secrets(name: str, spec: dict, path: list, where: Where) -> dict:
    secrets = DEFAULT_SECRETS | spec.get("secrets", {})
    methods = {secrets["method"], *secrets["overrides"].values()}
    if "local" in methods and not name.startswith("dev"):
        raise GitopsError(
            f"{where(path + ['secrets'])}: method 'local' reads git-ignored files and is for dev "
            f"only (names starting with 'dev'); use external or sealed for {name}"
        )
    return secrets


def _object_store(spec: dict, path: list, where: Where) -> ObjectStore:
    kind = spec.get("kind", "minio")
    if kind == "minio" and (spec.get("endpoint") or spec.get("credentials_secret")):
        raise GitopsError(f"{where(path + ['kind'])}: endpoint and credentials_secret are for kind: external; "
                          "MinIO runs in the platform namespace with the minio-credentials Secret")
    return ObjectStore(kind=kind, bucket=spec.get("bucket", "mlflow-artifacts"), endpoint=spec.get("endpoint"),
                       public_endpoint=spec.get("public_endpoint"), region=spec.get("region", "us-east-1"),
                       verify_tls=spec.get("verify_tls", True), credentials_secret=spec.get("credentials_secret"))


def _instance(name: str, spec: dict, store: dict, platform: dict, clusters: dict, where: Where) -> PlatformInstance:
    path = ["platform", "instances", name]
    storage, tls, scaling = spec.get("storage", {}), spec.get("tls", {"enabled": False}), spec.get("autoscaling")
    if scaling and scaling["min_replicas"] > scaling["max_replicas"]:
        raise GitopsError(f"{where(path + ['autoscaling'])}: min_replicas {scaling['min_replicas']} "
                          f"is greater than max_replicas {scaling['max_replicas']}")
    own_store = "object_store" in spec
    if tls["enabled"] and not (tls.get("cluster_issuer") or tls.get("issuer") or tls.get("provided")):
        raise GitopsError(f"{where(path + ['tls'])}: TLS is on but nothing issues Secret "
                          f"{tls.get('secret_name', 'mlflow-tls')!r}: set cluster_issuer or issuer (cert-manager), "
                          "or provided: true if you create it yourself")
    return PlatformInstance(
        name=name, namespace=spec["namespace"], host=spec["host"],
        cluster=_destination(spec.get("cluster", IN_CLUSTER), clusters, path + ["cluster"], where),
        object_store=_object_store(spec["object_store"] if own_store else store,
                                   path + ["object_store"] if own_store else ["platform", "object_store"], where),
        workers=spec.get("workers", (platform.get("mlflow") or {}).get("workers", 2)),
        registry_of_record=spec.get("registry_of_record", False),
        secrets=_secrets(name, spec, path, where), replicas=spec.get("replicas", 1),
        resources=spec.get("resources", DEFAULT_MLFLOW_RESOURCES),
        postgres_storage=str(storage.get("postgres", "10Gi")),
        object_store_storage=str(storage.get("object_store", "20Gi")),
        storage_class=storage.get("storage_class"), tls_enabled=tls["enabled"],
        tls_secret=tls.get("secret_name", "mlflow-tls"), tls_cluster_issuer=tls.get("cluster_issuer"),
        tls_issuer=tls.get("issuer"),
        basic_auth=spec.get("basic_auth", True),
        autoscaling=({"target_cpu_utilization": 70} | scaling) if scaling else None,
    )


def _registry_of_record(instances: dict[str, PlatformInstance], raw: dict, where: Where) -> dict:
    marked = [name for name, inst in instances.items() if inst.registry_of_record]
    if len(instances) == 1 and not marked:
        only = next(iter(instances.values()))
        return {only.name: replace(only, registry_of_record=True)}
    if len(marked) != 1:
        found = f"{len(marked)} ({', '.join(marked)})" if marked else "none"
        raise GitopsError(f"{where(['platform', 'instances'])}: exactly one instance needs registry_of_record: true "
                          f"(it drives promotions and runs the receiver); found {found}")
    return instances


def _environment(name: str, spec: dict, clusters: dict, where: Where, repo: dict) -> Environment:
    path = ["environments", name]
    if name == PLATFORM_DIR:
        raise GitopsError(f"{where(path)}: the name {PLATFORM_DIR!r} is reserved for environments/{PLATFORM_DIR}/ "
                          "(the MLflow platform overlays); choose another")
    raw = spec.get("serving", {})
    serving = Serving(mode=raw.get("mode", "Standard"), min_replicas=raw.get("min_replicas", 1),
                      max_replicas=raw.get("max_replicas", 3), resources=raw.get("resources", DEFAULT_MODEL_RESOURCES),
                      models=tuple(raw["models"]) if "models" in raw else None)
    if serving.min_replicas == 0 and serving.mode not in SCALE_TO_ZERO_MODES:
        raise GitopsError(f"{where(path + ['serving', 'min_replicas'])}: 0 (scale to zero) needs KServe Serverless "
                          f"mode (Knative); mode {serving.mode} keeps at least one replica")
    if serving.min_replicas > serving.max_replicas:
        raise GitopsError(f"{where(path + ['serving', 'min_replicas'])}: min_replicas {serving.min_replicas} is "
                          f"greater than max_replicas {serving.max_replicas}")
    production, approval = approval_of(name, spec, repo, where)
    return Environment(name=name, namespace=spec["namespace"], serving=serving,
                       cluster=_destination(spec.get("cluster", IN_CLUSTER), clusters, path + ["cluster"], where),
                       secrets=_secrets(name, spec, path, where), production=production, approval=approval,
                       soak_seconds=stage_checks.soak_seconds(spec, path, where),
                       verify=stage_checks.verify(spec, path, where))


def _unique_namespaces(instances: dict[str, PlatformInstance], envs: dict[str, Environment], where: Where) -> None:
    seen: dict[tuple[str, str], list] = {}
    targets = [(["platform", "instances", n], p) for n, p in instances.items()]
    targets += [(["environments", n], e) for n, e in envs.items()]
    for path, target in targets:
        key = (target.cluster.server, target.namespace)
        if key in seen:
            raise GitopsError(f"{where(path + ['namespace'])}: namespace {target.namespace!r} on cluster "
                              f"{target.cluster.name} is already used by {'.'.join(seen[key])}; each needs its own")
        seen[key] = path


def _storage_reachable(registry: PlatformInstance, envs: dict[str, Environment], models: dict[str, Model],
                       where: Where) -> None:
    """Storage-mode predictors download from the registry's object store: their cluster must reach it."""
    for model in models.values():
        if model.mode != "storage":
            continue
        for alias, env_name in model.aliases.items():
            env = envs[env_name]
            same = env.cluster.server == registry.cluster.server
            if registry.object_store.endpoint_for(registry.namespace, same) is None:
                raise GitopsError(
                    f"{where(['models', model.name, 'aliases', alias])}: storage-mode model {model.name!r} serves "
                    f"in {env_name} on cluster {env.cluster.name}, which cannot reach the in-cluster MinIO of "
                    f"platform instance {registry.name}; set platform.object_store.public_endpoint, or use kind: external"
                )


def _model(name: str, spec: dict, envs: dict[str, Environment], where: Where) -> Model:
    check_model(name, spec, envs, where)
    for alias, env in spec["aliases"].items():
        if env not in envs:
            raise GitopsError(f"{where(['models', name, 'aliases', alias])}: alias {alias!r} maps to unknown "
                              f"environment {env!r} (known: {', '.join(envs)})")
        if not envs[env].may_serve(name):
            raise GitopsError(f"{where(['models', name, 'aliases', alias])}: environment {env!r} may not serve "
                              f"{name!r} (its serving.models: {', '.join(envs[env].serving.models or ())})")
    gates = spec.get("gates", {})
    for env, before in gates.get("require_previous_stage", {}).items():
        for stage in (env, before):
            if stage not in envs:
                raise GitopsError(
                    f"{where(['models', name, 'gates', 'require_previous_stage', env])}: unknown environment {stage!r}"
                )
    return Model(
        name=name, registered_model=spec.get("registered_model", name), aliases=dict(spec["aliases"]),
        mode=spec.get("mode", "image"), image_repository=spec.get("image_repository"),
        image_template=spec.get("image_template", "{repository}:{version}"),
        resources=spec.get("resources"), gates=gates,
    )

