"""argocd/: an AppProject fenced to this repo and the platform namespaces, one Application per env."""

from __future__ import annotations

from gitops_tool.config import Config, Environment

RETRY = {"limit": 5, "backoff": {"duration": "10s", "factor": 2, "maxDuration": "5m"}}


def app_project(cfg: Config) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "AppProject",
        "metadata": {"name": cfg.project, "namespace": cfg.argocd_namespace},
        "spec": {
            "description": f"MLflow platform {cfg.project}, managed by gitops-tool",
            "sourceRepos": [cfg.repo_url],
            "destinations": [{"server": cfg.destination_server, "namespace": env.namespace}
                             for env in cfg.environments.values()],
            # CreateNamespace=true needs Namespace; nothing else cluster-scoped is allowed.
            "clusterResourceWhitelist": [{"group": "", "kind": "Namespace"}],
            "orphanedResources": {"warn": True},
        },
    }


def application(cfg: Config, env: Environment) -> dict:
    return {
        "apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
        "metadata": {
            "name": f"{cfg.project}-{env.name}",
            "namespace": cfg.argocd_namespace,
            "labels": {"app.kubernetes.io/part-of": cfg.project, "gitops-tool.io/environment": env.name},
            "finalizers": ["resources-finalizer.argocd.argoproj.io"],
        },
        "spec": {
            "project": cfg.project,
            "source": {"repoURL": cfg.repo_url, "targetRevision": cfg.branch, "path": f"environments/{env.name}"},
            "destination": {"server": cfg.destination_server, "namespace": env.namespace},
            "syncPolicy": {
                "automated": {"prune": True, "selfHeal": True},
                "syncOptions": ["CreateNamespace=true", "PruneLast=true"],
                "retry": RETRY,
            },
            # The HPA owns replicas where autoscaling is on.
            "ignoreDifferences": [{"group": "apps", "kind": "Deployment", "name": "mlflow",
                                   "jsonPointers": ["/spec/replicas"]}] if env.autoscaling else [],
        },
    }


def argocd_files(cfg: Config) -> dict[str, list[dict]]:
    apps = [application(cfg, env) for env in cfg.environments.values()]
    for app in apps:
        if not app["spec"]["ignoreDifferences"]:
            del app["spec"]["ignoreDifferences"]
    return {
        "project.yaml": [app_project(cfg)],
        "applications.yaml": apps,
        "kustomization.yaml": [{
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "resources": ["project.yaml", "applications.yaml"],
        }],
    }
