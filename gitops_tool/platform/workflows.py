"""The GitHub Actions workflows `generate` writes to .github/workflows/.

Rules every workflow here keeps (tests/test_workflows.py checks them):
- actions are pinned to full commit SHAs (the step name says which release);
- `permissions` is empty at the top and granted per job, only what the job needs;
- user-controlled values (dispatch payloads, inputs) reach scripts through `env:`,
  never as `${{ }}` inside `run:` (script injection);
- only `gitops-tool` commands that exist are run.
"""

from __future__ import annotations

import json

from gitops_tool.config import Config

# Release commits, checked against public workflows that pin them.
CHECKOUT = ("actions/checkout@11bd71901bbe5b1630ceea73d27597364c9af683", "v4.2.2")
SETUP_PYTHON = ("actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065", "v5.6.0")
DOCKER_LOGIN = ("docker/login-action@74a5d142397b4f367a81961eba4e8cd7edddf772", "v3.4.0")
KIND_ACTION = ("helm/kind-action@a1b0e391336a6ee6713a0583f8c6240d70863de3", "v1.12.0")
KIND_VERSION = "v0.27.0"      # its default node image is kindest/node:v1.32.2
KUBECTL_VERSION = "v1.32.2"
PYTHON = "3.11"
RUNNER = "ubuntu-24.04"
DISPATCH_TYPE = "mlflow-model-alias"  # what the webhook receiver sends in dispatch mode
AUTO_ENV = "auto"                     # workflow_dispatch: take the environment from the alias map

BOT_NAME = "github-actions[bot]"
BOT_EMAIL = "41898282+github-actions[bot]@users.noreply.github.com"

TOOL_ENV = {
    # A variable or a secret, whichever the repository has; empty falls back to gitops.yaml.
    "MLFLOW_TRACKING_URI": "${{ vars.MLFLOW_TRACKING_URI || secrets.MLFLOW_TRACKING_URI }}",
    "MLFLOW_TRACKING_USERNAME": "${{ secrets.MLFLOW_TRACKING_USERNAME }}",
    "MLFLOW_TRACKING_PASSWORD": "${{ secrets.MLFLOW_TRACKING_PASSWORD }}",
    "MLFLOW_TRACKING_TOKEN": "${{ secrets.MLFLOW_TRACKING_TOKEN }}",
    # CRD schemas in the repository for the checks before each commit (optional).
    "GITOPS_TOOL_SCHEMA_DIR": "${{ vars.GITOPS_TOOL_SCHEMA_DIR }}",
}


def _uses(action: tuple[str, str], what: str, with_: dict | None = None) -> dict:
    step: dict = {"name": f"{what} ({action[0].split('@')[0]} {action[1]})", "uses": action[0]}
    if with_:
        step["with"] = with_
    return step


def _checkout(**with_: object) -> dict:
    return _uses(CHECKOUT, "Check out", dict(with_) or None)


def _python(spec: str = ".") -> list[dict]:
    # The repository is both the platform and the tool: install it from the checkout.
    return [
        _uses(SETUP_PYTHON, "Set up Python", {"python-version": PYTHON, "cache": "pip"}),
        {"name": "Install gitops-tool", "run": f'python -m pip install "{spec}"\n'},
    ]


def _git_identity() -> dict:
    return {"name": "Git identity for commits",
            "run": f'git config user.name "{BOT_NAME}"\ngit config user.email "{BOT_EMAIL}"\n'}


def _alias_map(cfg: Config) -> str:
    """Model (by config name and registered name) -> mode, image repository and alias map, as JSON."""
    models: dict[str, dict] = {}
    for m in cfg.models.values():
        entry = {"name": m.name, "registered_model": m.registered_model, "mode": m.mode,
                 "image_repository": m.image_repository or "", "aliases": m.aliases}
        models[m.registered_model] = entry
        models[m.name] = entry
    return json.dumps({"models": models, "environments": list(cfg.environments)}, sort_keys=True)


PLAN_SCRIPT = """\
set -euo pipefail
fail() { echo "::error::$1"; exit 1; }
model_json=$(jq -c --arg m "$MODEL" '.models[$m] // empty' <<<"$PLATFORM")
[ -n "$model_json" ] || fail "model '$MODEL' is not in gitops.yaml"
if [ -n "$VERSION" ]; then
  [[ "$VERSION" =~ ^[0-9]+$ ]] || fail "version '$VERSION' is not a positive integer"
  ref="$(jq -r .name <<<"$model_json")/$VERSION"
elif [ -n "$ALIAS" ]; then
  [[ "$ALIAS" =~ ^[A-Za-z0-9_-]+$ ]] || fail "alias '$ALIAS' is not a valid alias name"
  ref="$(jq -r .name <<<"$model_json")@$ALIAS"
else
  fail "give an alias or a version"
fi
environment="$ENVIRONMENT"
[ "$environment" != "$AUTO_ENV" ] || environment=""
if [ -z "$environment" ] && [ -n "$ALIAS" ]; then
  environment=$(jq -r --arg a "$ALIAS" '.aliases[$a] // empty' <<<"$model_json")
fi
[ -n "$environment" ] || fail "no environment: alias '$ALIAS' is not mapped in gitops.yaml; choose one"
jq -e --arg e "$environment" '.environments | index($e)' <<<"$PLATFORM" >/dev/null \\
  || fail "environment '$environment' is not in gitops.yaml"
{
  echo "ref=$ref"
  echo "environment=$environment"
  echo "model=$(jq -r .name <<<"$model_json")"
  echo "registered_model=$(jq -r .registered_model <<<"$model_json")"
  echo "mode=$(jq -r .mode <<<"$model_json")"
} >>"$GITHUB_OUTPUT"
echo "Promotion of \\`$ref\\` to **$environment** (delivery ${DELIVERY_ID:-none})" >>"$GITHUB_STEP_SUMMARY"
"""

BUILD_SCRIPT = """\
set -euo pipefail
# mlflow reads only the environment: fall back to gitops.yaml's URI as gitops-tool does.
export MLFLOW_TRACKING_URI="${MLFLOW_TRACKING_URI:-$(python -c 'import pathlib, gitops_tool.config as c
print(c.load_config(pathlib.Path("gitops.yaml")).mlflow["tracking_uri"] or "")')}"
# A dry run resolves the version and the image reference the promotion will deploy.
gitops-tool promote "$REF" --env "$ENVIRONMENT" --dry-run --trigger workflow --output json >plan.json
version=$(jq -r .to plan.json)
image=$(jq -r .image plan.json)
echo "image=$image" >>"$GITHUB_OUTPUT"
if docker manifest inspect "$image" >/dev/null 2>&1; then
  echo "$image already exists; not rebuilding" | tee -a "$GITHUB_STEP_SUMMARY"
  exit 0
fi
case "$image" in *@sha256:*) echo "::error::$image is a digest that does not exist"; exit 1;; esac
# MLflow's Dockerfile, made to run as the predictor pod does (non-root, read-only root, 0.0.0.0:8080).
mlflow models generate-dockerfile -m "models:/$REGISTERED_MODEL/$version" -d model-image
python -m gitops_tool.platform.model_image model-image
docker build -t "$image" model-image
docker push "$image"
digest=$(docker inspect --format '{{index .RepoDigests 0}}' "$image")
echo "image=$digest" >>"$GITHUB_OUTPUT"
# Record the build on the version: later promotions and reconcile deploy exactly this image.
python - "$REGISTERED_MODEL" "$version" "$image" "$digest" <<'EOF'
import sys
from mlflow import MlflowClient
name, version, image, digest = sys.argv[1:]
client = MlflowClient()
client.set_model_version_tag(name, version, "image", image)
client.set_model_version_tag(name, version, "image_digest", digest)
EOF
echo "built and pushed $digest" | tee -a "$GITHUB_STEP_SUMMARY"
"""

PROMOTE_SCRIPT = """\
set -euo pipefail
gitops-tool promote "$REF" --env "$ENVIRONMENT" --trigger workflow --output json \\
  ${IMAGE:+--image-tag "$IMAGE"} | tee promotion.json
"""


def _plan_job(cfg: Config) -> dict:
    payload, inputs = "github.event.client_payload", "inputs"
    return {
        "name": "Resolve model and environment",
        "runs-on": RUNNER,
        "timeout-minutes": 5,
        "permissions": {},
        "outputs": {key: f"${{{{ steps.plan.outputs.{key} }}}}"
                    for key in ("ref", "environment", "model", "registered_model", "mode")},
        "steps": [{
            "name": "Resolve",
            "id": "plan",
            "env": {
                "PLATFORM": _alias_map(cfg),
                "AUTO_ENV": AUTO_ENV,
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
    logins = [_uses(DOCKER_LOGIN, f"Log in to {registry}", {"registry": registry} | (
        {"username": "${{ github.actor }}", "password": "${{ secrets.GITHUB_TOKEN }}"} if registry == "ghcr.io"
        else {"username": "${{ secrets.REGISTRY_USERNAME }}", "password": "${{ secrets.REGISTRY_PASSWORD }}"}
    )) for registry in registries]
    return {
        "name": "Build the serving image",
        "needs": "plan",
        "if": "needs.plan.outputs.mode == 'image'",
        "runs-on": RUNNER,
        "timeout-minutes": 60,
        "permissions": permissions,
        "outputs": {"image": "${{ steps.build.outputs.image }}"},
        "steps": [
            _checkout(),
            *_python(".[mlflow]"),
            *logins,
            {"name": "Build and push unless the tag exists", "id": "build",
             "env": {**TOOL_ENV, "REF": "${{ needs.plan.outputs.ref }}",
                     "ENVIRONMENT": "${{ needs.plan.outputs.environment }}",
                     "REGISTERED_MODEL": "${{ needs.plan.outputs.registered_model }}"},
             "run": BUILD_SCRIPT},
        ],
    }


def _promote_job(with_build: bool) -> dict:
    needs, run_if, image = ["plan"], "needs.plan.result == 'success'", ""
    if with_build:
        # After the build, or without it (the build job skips storage-mode models).
        needs.append("build")
        run_if = f"always() && {run_if} && contains(fromJSON('[\"success\", \"skipped\"]'), needs.build.result)"
        image = "${{ needs.build.outputs.image }}"
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
        "permissions": {"contents": "write"},
        "steps": [
            _checkout(),
            *_python(),
            _git_identity(),
            {"name": "gitops-tool promote",
             "env": {**TOOL_ENV, "REF": "${{ needs.plan.outputs.ref }}",
                     "ENVIRONMENT": "${{ needs.plan.outputs.environment }}",
                     "IMAGE": image},
             "run": PROMOTE_SCRIPT},
        ],
    }


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
    jobs["promote"] = _promote_job(with_build)
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
        "jobs": jobs,
    }


def reconcile_workflow(cfg: Config) -> dict:
    return {
        "name": "reconcile",
        "on": {"schedule": [{"cron": "*/5 * * * *"}], "workflow_dispatch": {}},
        "permissions": {},
        # The polling fallback for lost webhook deliveries; never two at once.
        "concurrency": {"group": "reconcile", "cancel-in-progress": False},
        "jobs": {"reconcile": {
            "name": "Promote registry drift",
            "runs-on": RUNNER,
            "timeout-minutes": 15,
            "permissions": {"contents": "write"},
            "steps": [
                _checkout(),
                *_python(),
                _git_identity(),
                {"name": "gitops-tool reconcile", "env": dict(TOOL_ENV),
                 "run": "gitops-tool reconcile --output json | tee reconcile.json\n"},
            ],
        }},
    }


VALIDATE_SCRIPT = """\
set -euo pipefail
# CRD schemas are optional in CI: set the repository variable GITOPS_TOOL_SCHEMA_DIR to check them.
if [ -n "$SCHEMA_DIR" ]; then
  gitops-tool validate --schema-dir "$SCHEMA_DIR"
else
  gitops-tool validate --allow-unchecked
fi
"""


def validate_workflow(cfg: Config) -> dict:
    branch = [cfg.branch]
    return {
        "name": "validate",
        "on": {"pull_request": {"branches": branch}, "push": {"branches": branch}},
        "permissions": {},
        "concurrency": {"group": "validate-${{ github.ref }}", "cancel-in-progress": True},
        "jobs": {"validate": {
            "name": "Generate, validate, test",
            "runs-on": RUNNER,
            "timeout-minutes": 30,
            "permissions": {"contents": "read"},
            "steps": [
                _checkout(**{"persist-credentials": False}),
                *_python(".[test]"),
                {"name": "Generated files are up to date", "run": "gitops-tool generate --check\n"},
                {"name": "gitops-tool validate", "env": {"SCHEMA_DIR": "${{ vars.GITOPS_TOOL_SCHEMA_DIR }}"},
                 "run": VALIDATE_SCRIPT},
                {"name": "Tests (the kind end-to-end run is e2e-kind.yaml)",
                 "run": "if [ -d tests ]; then python -m pytest -q --ignore=tests/e2e; fi\n"},
            ],
        }},
    }


def e2e_workflow(cfg: Config) -> dict:
    paths = ["base/**", "environments/**", "argocd/**", "gitops.yaml", "tests/e2e/**"]
    return {
        "name": "e2e-kind",
        "on": {"workflow_dispatch": {}, "pull_request": {"branches": [cfg.branch], "paths": paths}},
        "permissions": {},
        "concurrency": {"group": "e2e-kind-${{ github.ref }}", "cancel-in-progress": True},
        "jobs": {"kind": {
            "name": "Argo CD on kind: sync, promote, sync",
            "runs-on": RUNNER,
            "timeout-minutes": 60,
            "permissions": {"contents": "read"},
            "steps": [
                _checkout(**{"persist-credentials": False}),
                *_python(".[test]"),
                # tests/e2e creates (and deletes) the cluster itself.
                _uses(KIND_ACTION, "Install kind and kubectl", {
                    "version": KIND_VERSION, "kubectl_version": KUBECTL_VERSION, "install_only": True,
                }),
                {"name": "End-to-end tests", "env": {"GITOPS_E2E": "1"},
                 "run": "python -m pytest tests/e2e -v -p no:cacheprovider\n"},
            ],
        }},
    }


def workflow_files(cfg: Config) -> dict[str, dict]:
    """{path: workflow} for .github/workflows/, as plain dicts in file order."""
    return {
        ".github/workflows/promote.yaml": promote_workflow(cfg),
        ".github/workflows/reconcile.yaml": reconcile_workflow(cfg),
        ".github/workflows/validate.yaml": validate_workflow(cfg),
        ".github/workflows/e2e-kind.yaml": e2e_workflow(cfg),
    }
