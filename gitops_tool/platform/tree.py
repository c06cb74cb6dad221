"""The whole generated tree as {relative path: text}, built from the config alone."""

from __future__ import annotations

import json
from pathlib import Path

from gitops_tool.config import Config
from gitops_tool.config.loader import schema_text
from gitops_tool.platform.argocd import argocd_files
from gitops_tool.platform.common import harden
from gitops_tool.platform.datastores import minio, postgres
from gitops_tool.platform.edge import ingress, network_policies, service_monitor
from gitops_tool.platform.mlflow_server import mlflow
from gitops_tool.platform.monitoring import kserve_pod_monitor, mlserver_metrics_policy, monitoring_files
from gitops_tool.platform.overlay import RELEASE_HEADER, empty_release, overlay_files, overlay_text_files
from gitops_tool.platform.receiver import receiver, receiver_policy
from gitops_tool.platform.workflows import workflow_files
from gitops_tool.platform.serving import serving_files
from gitops_tool.yamlio import GENERATED_HEADER, GENERATED_MARKER, dump_docs

SCHEMA_COPY = "gitops.schema.json"  # next to gitops.yaml, for the editor's `$schema=` line
MANAGED_DIRS = ("base", "environments", "argocd", ".github/workflows")
WORKFLOW_HEADER = f"{GENERATED_MARKER} Do not edit: `gitops-tool generate` rewrites it from gitops.yaml.\n"


def base_files(cfg: Config) -> dict[str, list[dict]]:
    files: dict[str, list[dict]] = {
        "postgres.yaml": postgres(cfg),
        "minio.yaml": minio(cfg),
        "mlflow.yaml": mlflow(cfg),
        "ingress.yaml": [ingress(cfg)],
        "servicemonitor.yaml": [service_monitor(cfg)],
        "network-policies.yaml": network_policies(cfg),
    }
    if cfg.receiver["enabled"]:
        files["webhook-receiver.yaml"] = receiver(cfg)
        files["network-policies.yaml"].append(receiver_policy(cfg))
        files["servicemonitor.yaml"].append(service_monitor(cfg, target="receiver"))
    if pod_monitor := kserve_pod_monitor(cfg):  # storage-mode models only: MLServer exposes metrics
        files["servicemonitor.yaml"].append(pod_monitor)
        files["network-policies.yaml"].append(mlserver_metrics_policy(cfg))
    files |= monitoring_files(cfg)
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "labels": [{"pairs": {"app.kubernetes.io/part-of": cfg.project,
                              "app.kubernetes.io/managed-by": "gitops-tool"}, "includeSelectors": False}],
        "resources": [name for name in files],
    }
    if cfg.receiver["enabled"]:
        # The receiver reads the mapped aliases from the same gitops.yaml; the hash suffix rolls it on change.
        kustomization["configMapGenerator"] = [{"name": "gitops-tool-config", "files": ["receiver/gitops.yaml"]}]
    files["kustomization.yaml"] = [kustomization]
    for model in cfg.models.values():
        for name, docs in serving_files(cfg, model).items():
            files[f"serving/{model.name}/{name}"] = docs
    return files


def generated_tree(cfg: Config) -> dict[str, str]:
    """Files `generate` owns and rewrites on every run."""
    tree: dict[str, list[dict]] = {}
    tree |= {f"base/{k}": v for k, v in base_files(cfg).items()}
    for env in cfg.environments.values():
        env_dir = cfg.env_dir(env.name)
        tree |= {f"environments/{env.name}/{k}": v for k, v in overlay_files(cfg, env, env_dir).items()}
    tree |= {f"argocd/{k}": v for k, v in argocd_files(cfg).items()}
    out = {path: dump_docs([harden(d) if path.startswith("base/") else d for d in docs])
           for path, docs in sorted(tree.items())}
    out |= {path: dump_docs([doc], header=WORKFLOW_HEADER) for path, doc in sorted(workflow_files(cfg).items())}
    for env in cfg.environments.values():
        for rel, body in overlay_text_files(cfg, env).items():
            out[f"environments/{env.name}/{rel}"] = body if isinstance(body, str) else dump_docs(body)
    if cfg.receiver["enabled"]:
        # cfg.source, not root/gitops.yaml: `--config` may name another file.
        out["base/receiver/gitops.yaml"] = GENERATED_HEADER + Path(cfg.source).read_text(encoding="utf-8")
    out[SCHEMA_COPY] = json.dumps(json.loads(schema_text()), indent=2) + "\n"
    return out


def create_once_tree(cfg: Config) -> dict[str, str]:
    """Files `generate` writes only when missing: promotion state lives there."""
    text = dump_docs([empty_release()], header=RELEASE_HEADER)
    return {f"environments/{env}/release/kustomization.yaml": text for env in cfg.environments}


def env_overlay_dirs(cfg: Config) -> dict[str, Path]:
    return {env: cfg.env_dir(env) for env in cfg.environments}
