"""Per-environment overlays: environments/<env>/kustomization.yaml and its generated patches.

Ownership is by directory, so `generate` and promotions never fight:
- kustomization.yaml and generated/ belong to `generate` (rewritten every run);
- release/ belongs to promotions (created once, never rewritten by `generate`);
- patches/ belongs to you (listed in kustomization.yaml, never touched).
"""

from __future__ import annotations

from pathlib import Path

from gitops_tool.config import Config, Environment
from gitops_tool.platform.datastores import pvc_template
from gitops_tool.platform.edge import ingress_env_patch
from gitops_tool.platform.mlflow_server import mlflow_env_patch, mlflow_hpa
from gitops_tool.platform.secrets import by_method, external_secret, local_files, sealed_files

RELEASE_HEADER = (
    "# Owned by `gitops-tool promote`, `rollback` and `release`: one entry per model served here.\n"
    "# `gitops-tool generate` creates this file once and never rewrites it.\n"
)


def _statefulset_storage(name: str, size: str, storage_class: str | None) -> dict:
    # volumeClaimTemplates has no merge key: the patch carries the whole template.
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
        "spec": {"volumeClaimTemplates": [pvc_template("data", size, storage_class)]},
    }


def generated_patches(cfg: Config, env: Environment) -> dict[str, dict]:
    return {
        "mlflow.yaml": mlflow_env_patch(cfg, env),
        "ingress.yaml": ingress_env_patch(env),
        "postgres-storage.yaml": _statefulset_storage("postgres", env.postgres_storage, env.storage_class),
        "minio-storage.yaml": _statefulset_storage("minio", env.minio_storage, env.storage_class),
    }


def user_patches(env_dir: Path) -> list[str]:
    folder = env_dir / "patches"
    if not folder.is_dir():
        return []
    return sorted(f"patches/{p.name}" for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def kustomization(cfg: Config, env: Environment, env_dir: Path) -> dict:
    resources = ["../../base"]
    if env.autoscaling:
        resources.append("generated/hpa.yaml")
    if by_method(cfg, env)["external"]:
        resources.append("generated/external-secrets.yaml")
    resources += sealed_files(env_dir)
    patches = [{"path": f"generated/{name}"} for name in generated_patches(cfg, env)]
    patches += [{"path": path} for path in user_patches(env_dir)]
    return {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": env.namespace,
        "labels": [{"pairs": {"app.kubernetes.io/instance": f"{cfg.project}-{env.name}"}, "includeSelectors": False}],
        "resources": resources,
        "components": ["release"],
        "patches": patches,
    }


def overlay_files(cfg: Config, env: Environment, env_dir: Path) -> dict[str, list[dict]]:
    files = {"kustomization.yaml": [kustomization(cfg, env, env_dir)]}
    for name, patch in generated_patches(cfg, env).items():
        files[f"generated/{name}"] = [patch]
    if env.autoscaling:
        files["generated/hpa.yaml"] = [mlflow_hpa(env)]
    methods = by_method(cfg, env)
    if methods["external"]:
        files["generated/external-secrets.yaml"] = [external_secret(env, n, k) for n, k in methods["external"].items()]
    return files


def overlay_text_files(cfg: Config, env: Environment) -> dict[str, str | list[dict]]:
    """Files outside the Argo CD overlay: the dev-only local Secret kustomization."""
    local = by_method(cfg, env)["local"]
    return local_files(env, local) if local else {}


def empty_release() -> dict:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
        "resources": [],
        "images": [],
        "patches": [],
    }
