"""argocd/: an AppProject fenced to this repo and the destinations gitops.yaml names, and one
Application per platform instance and per serving environment, each synced to its own cluster."""

from __future__ import annotations

from gitops_tool.config import Config, Environment, PlatformInstance
from gitops_tool.platform.overlay import application_name

RETRY = {"limit": 5, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "5m"}}


def destinations(cfg: Config) -> list[dict]:
    """Exactly the (cluster, namespace) pairs the platform and the serving environments use."""
    seen: list[dict] = []
    for target in cfg.targets():
        pair = {"server": target.cluster.server, "namespace": target.namespace}
        if pair not in seen:
            seen.append(pair)
    return seen


def app_project(cfg: Config) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
        "metadata": {"name": cfg.project, "namespace": cfg.argocd_namespace},
        "spec": {
            "description": f"MLflow platform {cfg.project} and its serving environments, managed by gitops-tool",
            "sourceRepos": [cfg.repo_url],
            "destinations": destinations(cfg),
            # CreateNamespace=true needs Namespace; nothing else cluster-scoped is allowed.
            "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
            "orphanedResources": {"warn": True},
        },
    }


def application(cfg: Config, target: PlatformInstance | Environment) -> dict:
    role = "platform" if isinstance(target, PlatformInstance) else "serving"
    labels = {"app.kubernetes.io/part-of": cfg.project, "gitops-tool.io/role": role,
              "gitops-tool.io/cluster": target.cluster.name}
    labels["gitops-tool.io/environment" if role == "serving" else "gitops-tool.io/platform"] = target.name
    spec: dict = {
        "project": cfg.project,
        "source": {"repoURL": cfg.repo_url, "targetRevision": cfg.branch, "path": target.rel_dir},
        "destination": {"server": target.cluster.server, "namespace": target.namespace},
        "syncPolicy": {
            "automated": {"prune": True, "selfHeal": True},
            "syncOptions": ["CreateNamespace=true", "PruneLast=true"],
            "retry": RETRY,
        },
    }
    if isinstance(target, PlatformInstance) and target.autoscaling:
        # The HPA owns replicas where autoscaling is on.
        spec["ignoreDifferences"] = [{"group": "apps", "kind": "Deployment", "name": "mlflow",
                                      "jsonPointers": ["/spec/replicas"]}]
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {
            "name": application_name(cfg, target),
            "namespace": cfg.argocd_namespace,
            "labels": labels,
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        },
        "spec": spec,
    }


def argocd_files(cfg: Config) -> dict[str, list[dict]]:
    return {
        "project.yaml": [app_project(cfg)],
        "applications.yaml": [application(cfg, target) for target in cfg.targets()],
        "kustomization.yaml": [{
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": ["project.yaml", "applications.yaml"],
        }],
    }
