"""The whole generated tree as {relative path: text}, built from the config alone."""

from __future__ import annotations

import json
from pathlib import Path

from gitops_tool.config import Config
from gitops_tool.config.loader import schema_text
from gitops_tool.platform.argocd import argocd_files
from gitops_tool.platform.common import harden
from gitops_tool.platform.dump_memo import DumpMemo
from gitops_tool.platform.datastores import minio, postgres
from gitops_tool.platform.edge import (
    ingress, minio_policy, platform_network_policies, serving_network_policies, service_monitor,
)
from gitops_tool.platform.gateway import gateway_files, uses_gateway
from gitops_tool.platform.mlflow_server import mlflow
from gitops_tool.platform.monitoring import (
    kserve_pod_monitor, mlserver_metrics_policy, monitoring_files, prometheus_rule,
)
from gitops_tool.platform.overlay import RELEASE_HEADER, empty_release, local_secret_files, serving_overlay_files
from gitops_tool.platform.platform_overlay import platform_overlay_files
from gitops_tool.platform.receiver import receiver, receiver_policy
from gitops_tool.platform.workflows import workflow_files
from gitops_tool.platform.serving import serving_files
from gitops_tool.yamlio import GENERATED_HEADER, GENERATED_MARKER, dump_docs

SCHEMA_COPY = "gitops.schema.json"  # next to gitops.yaml, for the editor's `$schema=` line
MANAGED_DIRS = ("base", "environments", "argocd", ".github/workflows")
WORKFLOW_HEADER = f"{GENERATED_MARKER} Do not edit: `gitops-tool generate` rewrites it from gitops.yaml.\n"


# Kinds a CRD defines: on first sync the CRD may still be missing (or just being installed by
# another Application), and Argo CD's dry run would fail the whole sync.
CRD_KINDS = {"ServiceMonitor", "PodMonitor", "PrometheusRule", "ExternalSecret", "SealedSecret", "InferenceService"}
SKIP_DRY_RUN = "SkipDryRunOnMissingResource=true"


def skip_dry_run_if_crd(doc: dict) -> dict:
    if isinstance(doc, dict) and doc.get("kind") in CRD_KINDS and "metadata" in doc:
        annotations = doc["metadata"].setdefault("annotations", {})
        options = [o for o in annotations.get("argocd.argoproj.io/sync-options", "").split(",") if o]
        if SKIP_DRY_RUN not in options:
            annotations["argocd.argoproj.io/sync-options"] = ",".join([*options, SKIP_DRY_RUN])
    return doc


def _kustomization(resources: list[str], *, component: bool = False) -> dict:
    if component:
        return {"apiVersion": "kustomize.config.k8s.io/v1alpha1", "kind": "Component", "resources": resources}
    return {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources}


def platform_base_files(cfg: Config) -> dict[str, list[dict]]:
    """base/platform/: what every MLflow platform instance runs, plus its optional components."""
    files: dict[str, list[dict]] = {
        "postgres.yaml": postgres(cfg),
        "mlflow.yaml": mlflow(cfg),
        **(gateway_files(cfg) if uses_gateway(cfg) else {"ingress.yaml": [ingress(cfg)]}),
        "servicemonitor.yaml": [service_monitor(cfg)],
        "network-policies.yaml": platform_network_policies(cfg),
    } | monitoring_files(cfg)
    files["kustomization.yaml"] = [_kustomization(list(files)) | _part_of(cfg)]
    # The in-cluster MinIO: only instances whose object_store.kind is minio include it.
    files["minio/minio.yaml"] = minio(cfg) + [minio_policy([])]
    files["minio/kustomization.yaml"] = [_kustomization(["minio.yaml"], component=True)]
    if cfg.receiver["enabled"]:
        # Only the registry of record includes it: one receiver, next to the MLflow it listens to.
        files["receiver/webhook-receiver.yaml"] = receiver(cfg) + [receiver_policy(cfg),
                                                                   service_monitor(cfg, target="receiver"),
                                                                   prometheus_rule(cfg, receiver=True)]
        component = _kustomization(["webhook-receiver.yaml"], component=True)
        # The receiver reads the alias map from the same gitops.yaml; the hash suffix rolls it on change.
        component["configMapGenerator"] = [{"name": "gitops-tool-config", "files": ["gitops.yaml"]}]
        files["receiver/kustomization.yaml"] = [component]
    return files


def serving_base_files(cfg: Config) -> dict[str, list[dict]]:
    """base/serving/: what every serving namespace has; base/serving/<model>/ are added by release."""
    serverless = any(env.serving.mode == "Serverless" for env in cfg.environments.values())
    files: dict[str, list[dict]] = {"network-policies.yaml": serving_network_policies(cfg, serverless)}
    if pod_monitor := kserve_pod_monitor(cfg):  # storage-mode models only: MLServer exposes metrics
        files["podmonitor.yaml"] = [pod_monitor]
        files["network-policies.yaml"].append(mlserver_metrics_policy(cfg))
    files["kustomization.yaml"] = [_kustomization(list(files)) | _part_of(cfg)]
    for model in cfg.models.values():
        for name, docs in serving_files(cfg, model).items():
            files[f"{model.name}/{name}"] = docs
    return files


def _part_of(cfg: Config) -> dict:
    pairs = {"app.kubernetes.io/part-of": cfg.project, "app.kubernetes.io/managed-by": "gitops-tool"}
    return {"labels": [{"pairs": pairs, "includeSelectors": False}]}


def generated_tree(cfg: Config) -> dict[str, str]:
    """Files `generate` owns and rewrites on every run."""
    tree: dict[str, list] = {}
    tree |= {f"base/platform/{k}": v for k, v in platform_base_files(cfg).items()}
    tree |= {f"base/serving/{k}": v for k, v in serving_base_files(cfg).items()}
    for inst in cfg.platform.values():
        files = platform_overlay_files(cfg, inst, cfg.platform_dir(inst.name))
        tree |= {f"{inst.rel_dir}/{k}": v for k, v in files.items()}
    for env in cfg.environments.values():
        tree |= {f"{env.rel_dir}/{k}": v for k, v in serving_overlay_files(cfg, env, cfg.env_dir(env.name)).items()}
    tree |= {f"argocd/{k}": v for k, v in argocd_files(cfg).items()}
    memo = DumpMemo(cfg.root)  # an unchanged document's file on disk is its dump: no ruamel for it
    out = {path: memo.dump(path, [skip_dry_run_if_crd(harden(d) if path.startswith("base/") else d) for d in docs],
                           dump_docs)
           for path, docs in sorted(tree.items())}
    out |= {path: memo.dump(path, [doc], dump_docs, header=WORKFLOW_HEADER)
            for path, doc in sorted(workflow_files(cfg).items())}
    for target in cfg.targets():
        for rel, body in local_secret_files(cfg, target).items():
            path = f"{target.rel_dir}/{rel}"
            out[path] = body if isinstance(body, str) else memo.dump(path, body, dump_docs)
    memo.save()
    if cfg.receiver["enabled"]:
        # cfg.source, not root/gitops.yaml: `--config` may name another file.
        out["base/platform/receiver/gitops.yaml"] = GENERATED_HEADER + Path(cfg.source).read_text(encoding="utf-8")
    out[SCHEMA_COPY] = json.dumps(json.loads(schema_text()), indent=2) + "\n"
    return out


def create_once_tree(cfg: Config) -> dict[str, str]:
    """Files `generate` writes only when missing: promotion state lives there."""
    text = dump_docs([empty_release()], header=RELEASE_HEADER)
    return {f"environments/{env}/release/kustomization.yaml": text for env in cfg.environments}


def overlay_dirs(cfg: Config) -> dict[str, Path]:
    """Every overlay Argo CD syncs, by label: platform/<instance> and each serving environment."""
    return {t.label: cfg.root / t.rel_dir for t in cfg.targets()}
