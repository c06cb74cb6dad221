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
from gitops_tool.platform.common import harden, hook_job
from gitops_tool.platform.secrets import LOCAL_DIR, by_method, external_secret, local_files, s3_annotations, sealed_files
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
    resources = [base, NAMESPACE_FILE, *resources]
    if by_method(cfg, target)["external"]:
        resources.append("generated/external-secrets.yaml")
    if by_method(cfg, target)["local"]:
        resources.append(LOCAL_CHECK_FILE)
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


NAMESPACE_FILE = "generated/namespace.yaml"
LOCAL_CHECK_FILE = "generated/local-secrets-check.yaml"


def local_secrets_check(cfg: Config, target: PlatformInstance | Environment, names: list[str]) -> dict:
    """A PreSync Job that fails the sync, naming each missing Secret and the command that creates it.

    Without it, pods that read a Secret nobody applied wait in CreateContainerConfigError and the
    Application stays Progressing with nothing saying why. The Secrets are mounted optional, so
    the Job starts either way and reports which are absent.
    """
    apply = f"kubectl apply -k {target.rel_dir}/{LOCAL_DIR}"
    script = "missing=\n" + "".join(
        f'[ -d /secrets/{n} ] && [ -n "$(ls /secrets/{n})" ] || missing="$missing {n}"\n' for n in names) + (
        'if [ -n "$missing" ]; then\n'
        f'  echo "local Secrets missing in namespace {target.namespace}:$missing; create them with: {apply}" >&2\n'
        '  echo "$missing" > /dev/termination-log; exit 1\n'
        'fi\necho "local Secrets present"\n')
    job = hook_job("local-secrets-check", "secrets", wave="-1", hook="PreSync", backoff_limit=0, container={
        "name": "check", "image": cfg.images["gitops_tool"], "command": ["sh", "-c", script],
        "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}},
        "volumeMounts": [{"name": n, "mountPath": f"/secrets/{n}", "readOnly": True} for n in names],
    }, extra_volumes=[{"name": n, "secret": {"secretName": n, "optional": True}} for n in names])
    job["spec"]["activeDeadlineSeconds"] = 120
    return harden(job)


def namespace_object(target: PlatformInstance | Environment) -> dict:
    """The overlay's own Namespace, so `kubectl apply -k` works without Argo CD's CreateNamespace.

    Prune=false: deleting the Application must never delete the namespace (and the PVCs in it).
    """
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": target.namespace, "annotations": {
                "argocd.argoproj.io/sync-wave": "-2", "argocd.argoproj.io/sync-options": "Prune=false"}}}


def application_name(cfg: Config, target: PlatformInstance | Environment) -> str:
    return f"{cfg.project}-{target.label.replace('/', '-')}"


def overlay_generated_files(cfg: Config, target: PlatformInstance | Environment) -> dict[str, list[dict]]:
    """The Namespace, and the ExternalSecrets of the Secrets read through ESO."""
    files: dict[str, list[dict]] = {NAMESPACE_FILE: [namespace_object(target)]}
    methods = by_method(cfg, target)
    if external := methods["external"]:
        files["generated/external-secrets.yaml"] = [external_secret(cfg, target, n, k) for n, k in external.items()]
    if methods["local"]:
        files[LOCAL_CHECK_FILE] = [local_secrets_check(cfg, target, sorted(methods["local"]))]
    return files


def local_secret_files(cfg: Config, target: PlatformInstance | Environment) -> dict[str, str | list[dict]]:
    """Files outside the Argo CD overlay: the dev-only local Secret kustomization."""
    local = by_method(cfg, target)["local"]
    return local_files(cfg, target, local) if local else {}


def served_models(cfg: Config, env: Environment) -> list[str]:
    """Models this environment may serve: its serving policy patches each one."""
    return [m for m in cfg.models if env.may_serve(m)]


def storage_account_patch(cfg: Config, env: Environment) -> list[dict]:
    """The S3 endpoint annotations on the storage ServiceAccount too (KServe reads them from either)."""
    return [{"op": "add", "path": "/metadata/annotations", "value": s3_annotations(cfg, env)}]


def serving_overlay_files(cfg: Config, env: Environment, env_dir: Path) -> dict[str, list]:
    patches = [{"path": f"generated/serving/{m}.yaml", "target": ISVC_TARGET | {"name": m}}
               for m in served_models(cfg, env)]
    storage = [m for m in served_models(cfg, env) if cfg.models[m].mode == "storage"]
    patches += [{"path": f"generated/serving/{m}-storage.yaml",
                 "target": {"version": "v1", "kind": "ServiceAccount", "name": f"{m}-storage"}} for m in storage]
    files: dict[str, list] = {"kustomization.yaml": [overlay_kustomization(
        cfg, env, env_dir, base="../../base/serving", resources=[], patches=patches, components=["release"])]}
    for name in served_models(cfg, env):
        files[f"generated/serving/{name}.yaml"] = [serving_patch(cfg, cfg.models[name], env)]
    for name in storage:
        files[f"generated/serving/{name}-storage.yaml"] = [storage_account_patch(cfg, env)]
    return files | overlay_generated_files(cfg, env)


def empty_release() -> dict:
    return {
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
        "resources": [],
        "images": [],
        "patches": [],
    }
