"""Serving overlays: environments/<env>/kustomization.yaml and its generated patches.

Ownership is by directory, so `generate` and promotions never fight:
- kustomization.yaml and generated/ belong to `generate` (rewritten every run);
- release/ belongs to promotions (created once, never rewritten by `generate`);
- patches/ belongs to you (listed in kustomization.yaml, never touched).

A serving overlay holds only what serving needs: the serving base (NetworkPolicies, predictor
monitoring), the InferenceServices its release component adds, and their Secrets.
"""

from __future__ import annotations

from pathlib import Path

from gitops_tool.config import Config, Environment, PlatformInstance
from gitops_tool.platform.secrets import by_method, external_secret, local_files, sealed_files
from gitops_tool.platform.serving import serving_patch

RELEASE_HEADER = (
    "# Owned by `gitops-tool promote`, `rollback` and `release`: one entry per model served here.\n"
    "# `gitops-tool generate` creates this file once and never rewrites it.\n"
)
ISVC_TARGET = {"group": "serving.kserve.io", "version": "v1beta1", "kind": "InferenceService"}


def user_patches(env_dir: Path) -> list[str]:
    folder = env_dir / "patches"
    if not folder.is_dir():
        return []
    return sorted(f"patches/{p.name}" for p in folder.iterdir() if p.suffix in (".yaml", ".yml") and p.is_file())


def overlay_kustomization(cfg: Config, target: PlatformInstance | Environment, env_dir: Path, *,
                          base: str, resources: list[str], patches: list[dict], components: list[str]) -> dict:
    """The kustomization every overlay shares: namespace, instance label, Secrets, then user patches."""
    resources = [base, *resources]
    if by_method(cfg, target)["external"]:
        resources.append("generated/external-secrets.yaml")
    resources += sealed_files(env_dir)
    doc = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "namespace": target.namespace,
        "labels": [{"pairs": {"app.kubernetes.io/instance": application_name(cfg, target)},
                    "includeSelectors": False}],
        "resources": resources,
        "components": components,
        "patches": patches + [{"path": path} for path in user_patches(env_dir)],
    }
    if not doc["components"]:
        del doc["components"]
    return doc


def application_name(cfg: Config, target: PlatformInstance | Environment) -> str:
    return f"{cfg.project}-{target.label.replace('/', '-')}"


def secret_files(cfg: Config, target: PlatformInstance | Environment) -> dict[str, list[dict]]:
    external = by_method(cfg, target)["external"]
    if not external:
        return {}
    return {"generated/external-secrets.yaml": [external_secret(cfg, target, n, k) for n, k in external.items()]}


def local_secret_files(cfg: Config, target: PlatformInstance | Environment) -> dict[str, str | list[dict]]:
    """Files outside the Argo CD overlay: the dev-only local Secret kustomization."""
    local = by_method(cfg, target)["local"]
    return local_files(cfg, target, local) if local else {}


def served_models(cfg: Config, env: Environment) -> list[str]:
    """Models this environment may serve: its serving policy patches each one."""
    return [m for m in cfg.models if env.may_serve(m)]


def serving_overlay_files(cfg: Config, env: Environment, env_dir: Path) -> dict[str, list]:
    patches = [{"path": f"generated/serving/{m}.yaml", "target": ISVC_TARGET | {"name": m}}
               for m in served_models(cfg, env)]
    files: dict[str, list] = {"kustomization.yaml": [overlay_kustomization(
        cfg, env, env_dir, base="../../base/serving", resources=[], patches=patches, components=["release"])]}
    for name in served_models(cfg, env):
        files[f"generated/serving/{name}.yaml"] = [serving_patch(cfg, cfg.models[name], env)]
    return files | secret_files(cfg, env)


def empty_release() -> dict:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
        "resources": [],
        "images": [],
        "patches": [],
    }
