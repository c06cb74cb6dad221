"""Platform overlays: environments/platform/<instance>/, one per MLflow platform instance.

Each includes base/platform (PostgreSQL, MLflow, the Ingress, monitoring) and the components
it needs: minio/ when its object store is the in-cluster MinIO, receiver/ only on the registry
of record, so exactly one webhook receiver exists however many instances there are.
"""

from __future__ import annotations

from pathlib import Path

from gitops_tool.config import Config, PlatformInstance
from gitops_tool.platform.datastores import bucket_job_patch, pvc_template
from gitops_tool.platform.edge import ingress_env_patch, minio_policy
from gitops_tool.platform.gateway import edge_patches, uses_gateway
from gitops_tool.platform.mlflow_server import mlflow_env_patch, mlflow_hpa
from gitops_tool.platform.overlay import overlay_generated_files, overlay_kustomization
from gitops_tool.platform.secrets import storage_models


def _statefulset_storage(name: str, size: str, storage_class: str | None) -> dict:
    # volumeClaimTemplates has no merge key: the patch carries the whole template.
    return {
        "apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": name},
        "spec": {"volumeClaimTemplates": [pvc_template("data", size, storage_class)]},
    }


def uses_minio(inst: PlatformInstance) -> bool:
    return inst.object_store.kind == "minio"


def runs_receiver(cfg: Config, inst: PlatformInstance) -> bool:
    return inst.registry_of_record and bool(cfg.receiver["enabled"])


def minio_clients(cfg: Config, inst: PlatformInstance) -> list[str]:
    """Serving namespaces on this cluster whose storage-mode predictors download from this MinIO."""
    if not inst.registry_of_record:
        return []
    return sorted({env.namespace for env in cfg.environments.values()
                   if env.cluster.server == inst.cluster.server and storage_models(cfg, env)})


def generated_patches(cfg: Config, inst: PlatformInstance) -> dict[str, dict]:
    edge = edge_patches(inst) if uses_gateway(cfg) else {"ingress.yaml": ingress_env_patch(inst)}
    patches = {
        "mlflow.yaml": mlflow_env_patch(cfg, inst),
        **edge,
        "postgres-storage.yaml": _statefulset_storage("postgres", inst.postgres_storage, inst.storage_class),
    }
    if uses_minio(inst):
        patches["minio-storage.yaml"] = _statefulset_storage("minio", inst.object_store_storage, inst.storage_class)
        patches["minio-bucket.yaml"] = bucket_job_patch(inst.object_store.bucket)
        if serving := minio_clients(cfg, inst):
            # NetworkPolicy ingress has no merge key: this replaces the component's rule list.
            patches["minio-from-serving.yaml"] = minio_policy(serving)
    return patches


def components(cfg: Config, inst: PlatformInstance) -> list[str]:
    names = ["minio"] if uses_minio(inst) else []
    if runs_receiver(cfg, inst):
        names.append("receiver")
    return [f"../../../base/platform/{name}" for name in names]


def platform_overlay_files(cfg: Config, inst: PlatformInstance, env_dir: Path) -> dict[str, list[dict]]:
    resources = ["generated/hpa.yaml"] if inst.autoscaling else []
    patches = [{"path": f"generated/{name}"} for name in generated_patches(cfg, inst)]
    files = {"kustomization.yaml": [overlay_kustomization(
        cfg, inst, env_dir, base="../../../base/platform", resources=resources, patches=patches,
        components=components(cfg, inst))]}
    files |= {f"generated/{name}": [patch] for name, patch in generated_patches(cfg, inst).items()}
    if inst.autoscaling:
        files["generated/hpa.yaml"] = [mlflow_hpa(inst)]
    return files | overlay_generated_files(cfg, inst)
