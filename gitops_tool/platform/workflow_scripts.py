"""The shell steps of the generated workflows (bash with `set -euo pipefail`, jq, curl, gitops-tool).

Values from events and inputs reach them only through `env:`. tests/test_workflows.py and
tests/test_workflow_steps.py run them with bash in a directory made by `gitops-tool init`.
"""

from __future__ import annotations

# workflow_dispatch runs the workflow file of the branch it was started from; promotions commit to the
# configured branch, so a run from any other branch would publish that branch's work. Refuse it.
BRANCH_GUARD = """\
if [ "${GITHUB_EVENT_NAME:-}" = "workflow_dispatch" ] && [ "${GITHUB_REF:-}" != "refs/heads/$BRANCH" ]; then
  echo "::error::run this workflow from $BRANCH (it was started from ${GITHUB_REF:-an unknown ref}): \\
promotions commit to $BRANCH"
  exit 1
fi
"""

PLAN_SCRIPT = """\
set -euo pipefail
fail() { echo "::error::$1"; exit 1; }
""" + BRANCH_GUARD + """\
model_json=$(jq -c --arg m "$MODEL" '.models[$m] // empty' <<<"$PLATFORM")
[ -n "$model_json" ] || fail "model '$MODEL' is not in gitops.yaml"
name=$(jq -r .name <<<"$model_json")
[ -z "$VERSION" ] || [[ "$VERSION" =~ ^[0-9]+$ ]] || fail "version '$VERSION' is not a positive integer"
[ -z "$ALIAS" ] || [[ "$ALIAS" =~ ^[A-Za-z0-9_-]+$ ]] || fail "alias '$ALIAS' is not a valid alias name"
[[ "$DELIVERY_ID" =~ ^[A-Za-z0-9._:-]{0,128}$ ]] || fail "delivery id '$DELIVERY_ID' is not a delivery id"
if [ -n "$ALIAS" ]; then
  # The alias, not the version the event named: it is resolved when the promotion runs, so the newest
  # registry state wins even when runs finish out of order, and the commit keeps its Alias: trailer.
  ref="$name@$ALIAS"
elif [ -n "$VERSION" ]; then
  ref="$name/$VERSION"
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
  echo "model=$name"
  echo "registered_model=$(jq -r .registered_model <<<"$model_json")"
  echo "mode=$(jq -r .mode <<<"$model_json")"
  echo "delivery_id=$DELIVERY_ID"
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
{
  echo "version=$version"
  echo "image=$image"
} >>"$GITHUB_OUTPUT"
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
args=(--env "$ENVIRONMENT" --trigger workflow --output json)
[ -z "$DELIVERY_ID" ] || args+=(--delivery-id "$DELIVERY_ID")
if [ -n "$BUILT_VERSION" ]; then
  # Runs finish in build order, not event order: deploy the image built here only while the alias still
  # names its version. Otherwise a newer run (the alias moved since) promotes the newer version.
  now=$(gitops-tool promote "$REF" "${args[@]}" --dry-run | jq -r .to)
  if [ "$now" != "$BUILT_VERSION" ]; then
    echo "::notice::$REF is version $now now, not $BUILT_VERSION built by this run; the run for $now promotes it"
    exit 0
  fi
  args+=(--image-tag "$IMAGE")
fi
code=0
gitops-tool promote "$REF" "${args[@]}" >promotion.json 2>promotion.err || code=$?
cat promotion.json
cat promotion.err >&2
if [ "$code" -ne 0 ] && grep -qiE 'GH006|GH013|protected branch|rule violation' promotion.err; then
  echo "::error::branch protection refused the push to $BRANCH: let github-actions[bot] bypass the rule" \\
    "(or use a deploy key or GitHub App token), or promote through pull requests:" \\
    "environments.$ENVIRONMENT.approval: pull_request in gitops.yaml (or gitops-tool promote --pr)"
fi
exit "$code"
"""

RECONCILE_SCRIPT = """\
set -euo pipefail
""" + BRANCH_GUARD + """\
gitops-tool reconcile --dry-run --output json | tee reconcile.json
# This job never commits: each drift goes through promote.yaml, which builds a missing image first
# (a version without an `image` tag has no built image) and records the alias in the commit.
jq -c '.items[] | select(.action == "would-promote")' reconcile.json | while read -r item; do
  body=$(jq -c --arg ref "$BRANCH" \\
    '{ref: $ref, inputs: {model: .model, alias: .alias, environment: .env}}' <<<"$item")
  curl --fail-with-body --silent --show-error -X POST \\
    -H "Authorization: Bearer $GITHUB_TOKEN" -H "Accept: application/vnd.github+json" \\
    -H "X-GitHub-Api-Version: 2022-11-28" \\
    "$GITHUB_API_URL/repos/$GITHUB_REPOSITORY/actions/workflows/promote.yaml/dispatches" -d "$body"
  jq -r '"dispatched promote.yaml for \\(.model)@\\(.alias) -> \\(.env)"' <<<"$item" | tee -a "$GITHUB_STEP_SUMMARY"
done
"""

VALIDATE_SCRIPT = """\
set -euo pipefail
flags=()
# --strict: placeholder registries, repository URLs and hosts fail the check (they would break a sync).
[ "$STRICT" != "1" ] || flags+=(--strict)
# The packaged CRD schemas are used unless GITOPS_TOOL_SCHEMA_DIR names the cluster's (`schemas pull`).
[ -z "$SCHEMA_DIR" ] || flags+=(--schema-dir "$SCHEMA_DIR")
gitops-tool validate "${flags[@]}"
"""
