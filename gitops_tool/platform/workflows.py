"""The GitHub Actions workflows `generate` writes to .github/workflows/.

Rules every workflow here keeps (tests/test_workflows.py checks them):
- actions are pinned to full commit SHAs (the step name says which release);
- `permissions` is empty at the top and granted per job, only what the job needs;
- user-controlled values (dispatch payloads, inputs) reach scripts through `env:`,
  never as `${{ }}` inside `run:` (script injection);
- only `gitops-tool` commands that exist are run;
- no step needs a file a team's GitOps repository lacks (gitops-tool comes from `tool.package`).

Pushes made with GITHUB_TOKEN start no other workflow: a promotion commit does not run validate.yaml
(Argo CD syncs it all the same). docs/workflows.md has the details and the branch-protection setup.
"""

from __future__ import annotations

import json

from gitops_tool.config import Config
from gitops_tool.platform.workflow_scripts import (BUILD_SCRIPT, PLAN_SCRIPT, PROMOTE_SCRIPT, RECONCILE_SCRIPT,
                                                   VALIDATE_SCRIPT)
from gitops_tool.platform.workflow_steps import (DEFAULTS, DOCKER_LOGIN, KIND_ACTION, KIND_VERSION, KUBECTL_VERSION,
                                                 RUNNER, checkout, container, git_identity, install_tool, is_local,
                                                 package, uses)

DISPATCH_TYPE = "mlflow-model-alias"  # what the webhook receiver sends in dispatch mode
AUTO_ENV = "auto"                     # workflow_dispatch: take the environment from the alias map

TOOL_ENV = {
    # A variable or a secret, whichever the repository has; empty falls back to gitops.yaml.
    "MLFLOW_TRACKING_URI": "${{ vars.MLFLOW_TRACKING_URI || secrets.MLFLOW_TRACKING_URI }}",
    "MLFLOW_TRACKING_USERNAME": "${{ secrets.MLFLOW_TRACKING_USERNAME }}",
    "MLFLOW_TRACKING_PASSWORD": "${{ secrets.MLFLOW_TRACKING_PASSWORD }}",
    "MLFLOW_TRACKING_TOKEN": "${{ secrets.MLFLOW_TRACKING_TOKEN }}",
    # CRD schemas in the repository for the checks before each commit (optional).
    "GITOPS_TOOL_SCHEMA_DIR": "${{ vars.GITOPS_TOOL_SCHEMA_DIR }}",
}


def _alias_map(cfg: Config) -> str:
    """Model (by config name and registered name) -> mode, image repository and alias map, as JSON."""
    models: dict[str, dict] = {}
    for m in cfg.models.values():
        entry = {"name": m.name, "registered_model": m.registered_model, "mode": m.mode,
                 "image_repository": m.image_repository or "", "aliases": m.aliases}
        models[m.registered_model] = entry
        models[m.name] = entry
    return json.dumps({"models": models, "environments": list(cfg.environments)}, sort_keys=True)


def _plan_job(cfg: Config) -> dict:
    payload, inputs = "github.event.client_payload", "inputs"
    return {
        "name": "Resolve model and environment",
        "runs-on": RUNNER,
        "timeout-minutes": 5,
        "permissions": {},
        "outputs": {key: f"${{{{ steps.plan.outputs.{key} }}}}"
                    for key in ("ref", "environment", "model", "registered_model", "mode", "delivery_id")},
        "steps": [{
            "name": "Resolve",
            "id": "plan",
            "env": {
                "PLATFORM": _alias_map(cfg),
                "AUTO_ENV": AUTO_ENV,
                "BRANCH": cfg.branch,
                "MODEL": f"${{{{ {payload}.model || {inputs}.model }}}}",
                "ALIAS": f"${{{{ {payload}.alias || {inputs}.alias }}}}",
                "VERSION": f"${{{{ {payload}.version || {inputs}.version }}}}",
                "ENVIRONMENT": f"${{{{ {payload}.environment || {inputs}.environment }}}}",
                "DELIVERY_ID": f"${{{{ {payload}.delivery_id }}}}",
            },
            "run": PLAN_SCRIPT,
        }],
    }


def _registries(cfg: Config) -> list[str]:
    """Registry hosts the build pushes to (a first path part without '.' or ':' means Docker Hub)."""
    hosts = set()
    for m in cfg.models.values():
        if m.mode == "image" and m.image_repository:
            first = m.image_repository.split("/")[0]
            hosts.add(first if "." in first or ":" in first or first == "localhost" else "docker.io")
    return sorted(hosts)


def _build_job(cfg: Config) -> dict:
    registries = _registries(cfg)
    permissions = {"contents": "read"}
    if "ghcr.io" in registries:
        permissions["packages"] = "write"  # GITHUB_TOKEN pushes to GHCR
    logins = [uses(DOCKER_LOGIN, f"Log in to {registry}", {"registry": registry} | (
        {"username": "${{ github.actor }}", "password": "${{ secrets.GITHUB_TOKEN }}"} if registry == "ghcr.io"
        else {"username": "${{ secrets.REGISTRY_USERNAME }}", "password": "${{ secrets.REGISTRY_PASSWORD }}"}
    )) for registry in registries]
    return {
        "name": "Build the serving image",
        "needs": "plan",
        "if": "needs.plan.outputs.mode == 'image'",
        "runs-on": RUNNER,
        "timeout-minutes": 60,
        # Two runs for the same model and environment never build at once (the second finds the tag).
        "concurrency": {"group": "build-${{ needs.plan.outputs.environment }}-${{ needs.plan.outputs.model }}",
                        "cancel-in-progress": False},
        "permissions": permissions,
        "outputs": {"image": "${{ steps.build.outputs.image }}", "version": "${{ steps.build.outputs.version }}"},
        "steps": [
            checkout(cfg),
            *install_tool(cfg, "mlflow", force_pip=True),  # mlflow models build-docker needs Docker
            *logins,
            {"name": "Build and push unless the tag exists", "id": "build",
             "env": {**TOOL_ENV, "REF": "${{ needs.plan.outputs.ref }}",
                     "ENVIRONMENT": "${{ needs.plan.outputs.environment }}",
                     "REGISTERED_MODEL": "${{ needs.plan.outputs.registered_model }}"},
             "run": BUILD_SCRIPT},
        ],
    }


def _promote_job(cfg: Config, with_build: bool) -> dict:
    needs, run_if, built = ["plan"], "needs.plan.result == 'success'", {"BUILT_VERSION": "", "IMAGE": ""}
    if with_build:
        # After the build, or without it (the build job skips storage-mode models).
        needs.append("build")
        run_if = f"always() && {run_if} && contains(fromJSON('[\"success\", \"skipped\"]'), needs.build.result)"
        built = {"BUILT_VERSION": "${{ needs.build.outputs.version }}", "IMAGE": "${{ needs.build.outputs.image }}"}
    return {
        "name": "Promote",
        "needs": needs,
        "if": run_if,
        "runs-on": RUNNER,
        "timeout-minutes": 20,
        # One running promotion per environment and model; a newer pending run replaces an older
        # pending one (the latest alias move wins). Commits of different models race safely:
        # gitops-tool rebases and retries rejected pushes.
        "concurrency": {
            "group": "promote-${{ needs.plan.outputs.environment }}-${{ needs.plan.outputs.model }}",
            "cancel-in-progress": False,
        },
        "permissions": {"contents": "write", **_pr_permissions(cfg)},
        **container(cfg),
        "steps": [
            checkout(cfg, history=True),
            *install_tool(cfg),
            git_identity(),
            {"name": "gitops-tool promote",
             "env": {**TOOL_ENV, **_pr_env(cfg), "REF": "${{ needs.plan.outputs.ref }}", "BRANCH": cfg.branch,
                     "ENVIRONMENT": "${{ needs.plan.outputs.environment }}",
                     "DELIVERY_ID": "${{ needs.plan.outputs.delivery_id }}", **built},
             "run": PROMOTE_SCRIPT},
        ],
    }


def _pr_permissions(cfg: Config) -> dict:
    """approval: pull_request environments: the job opens and updates their pull requests."""
    return {"pull-requests": "write"} if any(e.approval == "pull_request" for e in cfg.environments.values()) else {}


def _pr_env(cfg: Config) -> dict:
    return {"GITHUB_TOKEN": "${{ secrets.GITHUB_TOKEN }}"} if _pr_permissions(cfg) else {}


def promote_workflow(cfg: Config) -> dict:
    env_options = [AUTO_ENV, *cfg.environments]
    model_input: dict = {"description": "Model (name in gitops.yaml or registered name)", "required": True}
    if cfg.models:
        model_input |= {"type": "choice", "options": list(cfg.models)}
    else:
        model_input |= {"type": "string"}
    jobs: dict = {"plan": _plan_job(cfg)}
    with_build = any(m.mode == "image" for m in cfg.models.values())
    if with_build:
        jobs["build"] = _build_job(cfg)
    jobs["promote"] = _promote_job(cfg, with_build)
    return {
        "name": "promote",
        "run-name": "promote ${{ github.event.client_payload.model || inputs.model }}"
                    "${{ (github.event.client_payload.alias || inputs.alias) && '@' || '/' }}"
                    "${{ github.event.client_payload.alias || inputs.alias || github.event.client_payload.version "
                    "|| inputs.version }}",
        "on": {
            "repository_dispatch": {"types": [DISPATCH_TYPE]},
            "workflow_dispatch": {"inputs": {
                "model": model_input,
                "alias": {"description": "Alias to deploy (or give a version)", "required": False,
                          "type": "string"},
                "version": {"description": "Version to deploy (needs an environment)", "required": False,
                            "type": "string"},
                "environment": {"description": f"Environment ({AUTO_ENV}: from the alias map)", "required": False,
                                "type": "choice", "options": env_options, "default": AUTO_ENV},
            }},
        },
        "permissions": {},
        **DEFAULTS,
        "jobs": jobs,
    }


def reconcile_workflow(cfg: Config) -> dict:
    return {
        "name": "reconcile",
        # Every 15 minutes: the fallback for lost webhook deliveries, not the delivery path itself.
        "on": {"schedule": [{"cron": "*/15 * * * *"}], "workflow_dispatch": {}},
        "permissions": {},
        # Never two at once.
        "concurrency": {"group": "reconcile", "cancel-in-progress": False},
        **DEFAULTS,
        "jobs": {"reconcile": {
            "name": "Dispatch a promotion for each registry drift",
            "runs-on": RUNNER,
            "timeout-minutes": 15,
            # actions: write starts promote.yaml (workflow_dispatch is one of the events GITHUB_TOKEN may start).
            "permissions": {"contents": "read", "actions": "write"},
            **container(cfg),
            "steps": [
                checkout(cfg),  # reconcile fetches the remote tip: keep the token
                *install_tool(cfg),
                {"name": "gitops-tool reconcile --dry-run, then dispatch promote.yaml",
                 "env": {**TOOL_ENV, "BRANCH": cfg.branch, "GITHUB_TOKEN": "${{ secrets.GITHUB_TOKEN }}"},
                 "run": RECONCILE_SCRIPT},
            ],
        }},
    }


def validate_workflow(cfg: Config) -> dict:
    branch = [cfg.branch]
    steps = [
        checkout(**{"persist-credentials": False}),
        *install_tool(cfg, "test" if is_local(package(cfg)) else ""),
        {"name": "Generated files are up to date", "run": "gitops-tool generate --check\n"},
        {"name": "gitops-tool validate",
         "env": {"SCHEMA_DIR": "${{ vars.GITOPS_TOOL_SCHEMA_DIR }}",
                 "STRICT": "1" if cfg.tool.get("validate_strict", True) else "0"},
         "run": VALIDATE_SCRIPT},
    ]
    if is_local(package(cfg)):  # gitops-tool's own checkout: its tests too
        steps.append({"name": "Tests (the kind end-to-end run is e2e-kind.yaml)",
                      "run": "python -m pytest -q --ignore=tests/e2e\n"})
    return {
        "name": "validate",
        "on": {"pull_request": {"branches": branch}, "push": {"branches": branch}},
        "permissions": {},
        "concurrency": {"group": "validate-${{ github.ref }}", "cancel-in-progress": True},
        **DEFAULTS,
        "jobs": {"validate": {
            "name": "Generate, validate" + (", test" if is_local(package(cfg)) else ""),
            "runs-on": RUNNER,
            "timeout-minutes": 30,
            "permissions": {"contents": "read"},
            **container(cfg),
            "steps": steps,
        }},
    }


def e2e_workflow(cfg: Config) -> dict:
    tests = cfg.tool["e2e_tests"].rstrip("/")
    paths = ["base/**", "environments/**", "argocd/**", "gitops.yaml", f"{tests}/**", ".github/workflows/e2e-kind.yaml"]
    if is_local(package(cfg)):  # the tool is this checkout: a change to it changes what is deployed
        paths += ["gitops_tool/**", "pyproject.toml"]
    return {
        "name": "e2e-kind",
        "on": {"workflow_dispatch": {}, "pull_request": {"branches": [cfg.branch], "paths": paths}},
        "permissions": {},
        "concurrency": {"group": "e2e-kind-${{ github.ref }}", "cancel-in-progress": True},
        **DEFAULTS,
        "jobs": {"kind": {
            "name": "Argo CD on kind: sync, promote, sync",
            "runs-on": RUNNER,
            "timeout-minutes": 60,
            "permissions": {"contents": "read"},
            "steps": [
                checkout(**{"persist-credentials": False}),
                *install_tool(cfg, "test", force_pip=True),  # pytest, and mlflow to register a model
                # The tests create (and delete) the cluster themselves.
                uses(KIND_ACTION, "Install kind and kubectl", {
                    "version": KIND_VERSION, "kubectl_version": KUBECTL_VERSION, "install_only": True,
                }),
                {"name": "End-to-end tests", "env": {"GITOPS_E2E": "1", "TESTS": tests},
                 "run": 'python -m pytest "$TESTS" -v -p no:cacheprovider\n'},
            ],
        }},
    }


def workflow_files(cfg: Config) -> dict[str, dict]:
    """{path: workflow} for .github/workflows/, as plain dicts in file order.

    e2e-kind.yaml only when gitops.yaml names end-to-end tests (`tool.e2e_tests`) the repository has."""
    files = {
        ".github/workflows/promote.yaml": promote_workflow(cfg),
        ".github/workflows/reconcile.yaml": reconcile_workflow(cfg),
        ".github/workflows/validate.yaml": validate_workflow(cfg),
    }
    if cfg.tool.get("e2e_tests"):
        files[".github/workflows/e2e-kind.yaml"] = e2e_workflow(cfg)
    return files
