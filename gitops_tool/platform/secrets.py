"""How each environment gets its Secrets: ExternalSecret, SealedSecret or a local secretGenerator.

No Secret value is ever generated or committed. `external` writes ExternalSecret objects; `sealed`
lists the SealedSecrets that `gitops-tool secrets seal` wrote into <overlay>/sealed/;
`local` (dev only) writes a separate kustomization in <overlay>/secrets-local/ whose
values come from git-ignored files, applied by hand (Argo CD never sees files that are not in Git).
"""

from __future__ import annotations

from pathlib import Path

from gitops_tool.config import Config, Environment, PlatformInstance
from gitops_tool.platform.common import SECRETS

LOCAL_DIR = "secrets-local"
SEALED_DIR = "sealed"


Target = PlatformInstance | Environment


def storage_models(cfg: Config, env: Environment) -> list[str]:
    """Storage-mode models an alias deploys to this environment (their predictors read the object store)."""
    return sorted(m.name for m in cfg.models.values() if m.mode == "storage" and env.name in m.aliases.values())


def required_secrets(cfg: Config, target: Target) -> dict[str, list[str]]:
    """Secret name -> keys, for what this platform instance or serving environment actually deploys."""
    if isinstance(target, Environment):
        return {"kserve-s3-credentials": SECRETS["kserve-s3-credentials"]["keys"]} if storage_models(cfg, target) else {}
    wanted = ["postgres-credentials", "mlflow-backend", "mlflow-keys"]
    if target.registry_of_record and cfg.receiver["enabled"]:
        wanted += ["gitops-webhook", "gitops-git-credentials" if cfg.receiver["mode"] == "promote"
                   else "gitops-github-token"]
        if cfg.receiver["mode"] == "promote" and cfg.argocd_refresh["mode"] == "api":
            wanted.append("gitops-argocd-token")
    out = {name: SECRETS[name]["keys"] for name in wanted}
    if target.basic_auth:  # nginx reads the key `auth`; Envoy Gateway's SecurityPolicy reads `.htpasswd`
        out["mlflow-basic-auth"] = [".htpasswd"] if cfg.edge["kind"] == "gateway-api" else ["auth"]
    out[target.object_store.secret] = list(target.object_store.keys)
    return out


def secret_purpose(name: str) -> str:
    return SECRETS[name]["used_by"] if name in SECRETS else "MLflow (S3 credentials of the external object store)"


def by_method(cfg: Config, target: Target) -> dict[str, dict[str, list[str]]]:
    out: dict[str, dict[str, list[str]]] = {"external": {}, "sealed": {}, "local": {}}
    for name, keys in required_secrets(cfg, target).items():
        out[target.secret_method(name)][name] = keys
    return out


def s3_annotations(cfg: Config, env: Environment) -> dict[str, str]:
    """What KServe's storage-initializer reads from the credentials Secret to reach the registry's store."""
    registry = cfg.registry
    store = registry.object_store
    endpoint = store.endpoint_for(registry.namespace, env.cluster.server == registry.cluster.server) or ""
    scheme, _, host = endpoint.partition("://")
    return {
        "serving.kserve.io/s3-endpoint": host.rstrip("/"),
        "serving.kserve.io/s3-usehttps": "1" if scheme == "https" else "0",
        "serving.kserve.io/s3-region": store.region,
        "serving.kserve.io/s3-verifyssl": "1" if store.verify_tls else "0",
    }


def secret_annotations(cfg: Config, target: Target, name: str) -> dict[str, str]:
    if name == "kserve-s3-credentials" and isinstance(target, Environment):
        return s3_annotations(cfg, target)
    return {}


def external_secret(cfg: Config, env: Target, name: str, keys: list[str]) -> dict:
    prefix = env.secrets["remote_prefix"].strip("/")
    remote = f"{prefix}/{name}" if prefix else name
    target: dict = {"name": name, "creationPolicy": "Owner"}
    if annotations := secret_annotations(cfg, env, name):
        target["template"] = {"metadata": {"annotations": annotations}}
    return {
        "apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
        "metadata": {"name": name, "annotations": {"argocd.argoproj.io/sync-wave": "-1"}},
        "spec": {
            "refreshInterval": env.secrets["refresh_interval"],
            "secretStoreRef": {"name": env.secrets["store"], "kind": env.secrets["store_kind"]},
            "target": target,
            "data": [{"secretKey": key, "remoteRef": {"key": remote, "property": key}} for key in keys],
        },
    }


def sealed_files(env_dir: Path) -> list[str]:
    folder = env_dir / SEALED_DIR
    if not folder.is_dir():
        return []
    return sorted(f"{SEALED_DIR}/{p.name}" for p in folder.iterdir() if p.suffix in (".yaml", ".yml"))


def local_files(cfg: Config, env: Target, secrets: dict[str, list[str]]) -> dict[str, str | list[dict]]:
    """secrets-local/: a kustomization over <name>.env files, their .gitignore and key-only examples."""
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        "namespace": env.namespace,
        # Names must match the references in the manifests exactly.
        "generatorOptions": {"disableNameSuffixHash": True},
        "secretGenerator": [_generator(cfg, env, name) for name in secrets],
    }
    files: dict[str, str | list[dict]] = {f"{LOCAL_DIR}/kustomization.yaml": [kustomization]}
    files[f"{LOCAL_DIR}/.gitignore"] = "# Generated by gitops-tool from gitops.yaml.\n# Secret values: never commit them.\n*.env\n"
    for name, keys in secrets.items():
        files[f"{LOCAL_DIR}/{name}.env.example"] = (
            "# Generated by gitops-tool from gitops.yaml.\n"
            f"# Copy to {name}.env, fill in, then: kubectl apply -k {env.rel_dir}/{LOCAL_DIR}\n"
            + "".join(f"{key}=\n" for key in keys)
        )
    return files


def _generator(cfg: Config, env: Target, name: str) -> dict:
    generator: dict = {"name": name, "envs": [f"{name}.env"]}
    if annotations := secret_annotations(cfg, env, name):
        generator["options"] = {"annotations": annotations}
    return generator
