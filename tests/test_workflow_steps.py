"""The generated workflows' shell steps, run with bash in a directory made by `gitops-tool init` alone.

Real: `init`, the wheel installed in a fresh virtualenv by the generated install step (tests/conftest.py),
bash, jq, curl, gitops-tool against a real `mlflow server` with trained wine versions, and a bare Git
remote on disk.
Stand-ins, because nothing here runs GitHub or Docker: the runner's files and variables (GITHUB_OUTPUT,
GITHUB_PATH, GITHUB_REF, ...) and the `${{ }}` expressions, replaced by the values a run would have;
`docker` and `mlflow models build-docker` scripts on PATH that record the image build; an HTTP server in
place of GitHub's REST API for workflow dispatches; a pre-receive hook that refuses a push with GitHub's
protected-branch message.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from gitops_tool.config import load_config
from gitops_tool.platform.workflows import workflow_files
from tests.conftest import Installed, runner_env
from tests.mlflow_harness import RecordingServer
from tests.promotion_fixtures import WINE, PromoRepo, git, make_repo, registry, trailers_of  # noqa: F401

pytestmark = pytest.mark.slow
EXPRESSION = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")
DIGEST = "sha256:" + "ab" * 32

FAKE_DOCKER = """#!/usr/bin/env bash
# A stand-in for the Docker CLI: no image exists until `push`; inspect prints a digest.
echo "docker $*" >>"$RECORD"
case "$1 $2" in
  "manifest inspect") grep -qx "pushed $3" "$RECORD" ;;
  "push "*) echo "pushed $2" >>"$RECORD" ;;
  "inspect --format") echo "${@: -1}" | sed "s/:[^:/]*$//;s/$/@%s/" ;;
esac
""" % DIGEST
FAKE_MLFLOW = """#!/usr/bin/env bash
# Records every mlflow call; `generate-dockerfile` works offline, so the real mlflow writes the Dockerfile
# (only building the image needs a Docker engine, and `docker` is the stand-in above).
echo "mlflow $*" >>"$RECORD"
if [ "$2" = generate-dockerfile ]; then exec "$REAL_MLFLOW" "$@"; fi
"""


def evaluate(value: str, context: dict[str, str]) -> str:
    """`${{ a || b }}` with the values of this run; unknown names are empty, as unset secrets are."""
    def one(match: re.Match) -> str:
        for name in match.group(1).split("||"):
            if context.get(name.strip()):
                return context[name.strip()]
        return ""
    return EXPRESSION.sub(one, str(value))


def find_step(workflows: dict, workflow: str, job: str, name: str) -> dict:
    return next(s for s in workflows[f".github/workflows/{workflow}.yaml"]["jobs"][job]["steps"]
                if s["name"].startswith(name))


def run_step(step: dict, cwd: Path, tmp: Path, context: dict[str, str], path: list[Path],
             **extra: str) -> tuple[subprocess.CompletedProcess, dict[str, str]]:
    env = runner_env(tmp, **extra)
    (tmp / "github_output").write_text("")
    env |= {key: evaluate(value, context) for key, value in step.get("env", {}).items()}
    env["PATH"] = ":".join(map(str, path)) + ":" + env["PATH"]
    env |= {k: v for k, v in extra.items() if k not in step.get("env", {})}
    result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]], cwd=cwd,
                            env=env, capture_output=True, text=True, timeout=300)
    outputs = dict(line.split("=", 1) for line in (tmp / "github_output").read_text().splitlines() if "=" in line)
    return result, outputs


@pytest.fixture(scope="module")
def platform(tmp_path_factory, registry) -> PromoRepo:  # noqa: F811
    """`gitops-tool init` (repo.url: a bare remote), committed and pushed; nothing else in the directory."""
    repo = make_repo(tmp_path_factory.mktemp("steps"), registry.url)
    files = {p.relative_to(repo.root).as_posix() for p in repo.root.rglob("*") if ".git" not in p.parts}
    assert "pyproject.toml" not in files and not any(f.startswith("tests/") for f in files)
    return repo


@pytest.fixture
def stand_ins(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "stand-ins"
    bin_dir.mkdir()
    for name, text in (("docker", FAKE_DOCKER), ("mlflow", FAKE_MLFLOW)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    return bin_dir


def _workflows(repo: PromoRepo) -> dict:
    return workflow_files(load_config(repo.root / "gitops.yaml"))


def test_a_dispatched_alias_move_is_planned_built_and_promoted_with_its_alias(
        platform: PromoRepo, registry, installed: Installed, stand_ins: Path, tmp_path: Path):  # noqa: F811
    """Issue 14, 2.4 and 2.5: the receiver's dispatch (alias and version) builds the missing image, records
    it on the version, and commits the alias move with its Alias: and Delivery-Id: trailers."""
    registry.set_alias("candidate", registry.v2)
    wf, record = _workflows(platform), tmp_path / "record"
    event = {"github.event.client_payload.model": WINE, "github.event.client_payload.alias": "candidate",
             "github.event.client_payload.version": registry.v2, "github.event.client_payload.delivery_id": "d-42",
             "vars.MLFLOW_TRACKING_URI": registry.url}
    plan, out = run_step(find_step(wf, "promote", "plan", "Resolve"), platform.root, tmp_path, event, [],
                         GITHUB_EVENT_NAME="repository_dispatch")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert out["ref"] == f"{WINE}@candidate" and out["environment"] == "dev" and out["delivery_id"] == "d-42"
    needs = event | {f"needs.plan.outputs.{k}": v for k, v in out.items()}

    # The build job installs gitops-tool[mlflow]: the test venv has mlflow; docker is the stand-in.
    import sys
    build, built = run_step(find_step(wf, "promote", "build", "Build and push"), platform.root, tmp_path, needs,
                            [stand_ins, Path(sys.executable).parent], RECORD=str(record),
                            REAL_MLFLOW=str(Path(sys.executable).parent / "mlflow"))
    assert build.returncode == 0, build.stdout + build.stderr
    image = f"registry.example.com/ml/wine-classifier:v{registry.v2}"
    recorded = record.read_text()
    assert f"mlflow models generate-dockerfile -m models:/{WINE}/{registry.v2} -d model-image" in recorded
    assert f"docker build -t {image} model-image" in recorded
    assert built == {"version": registry.v2, "image": f"registry.example.com/ml/wine-classifier@{DIGEST}"}
    tags = {t["key"]: t["value"] for t in registry.get_version(registry.v2).get("tags", [])}
    assert tags["image"] == image and tags["image_digest"] == built["image"]

    needs |= {f"needs.build.outputs.{k}": v for k, v in built.items()}
    before = platform.remote_count()
    promote, _ = run_step(find_step(wf, "promote", "promote", "gitops-tool promote"), platform.root, tmp_path,
                          needs, [installed.bin])
    assert promote.returncode == 0, promote.stdout + promote.stderr
    assert json.loads(promote.stdout)["to"] == registry.v2 and platform.remote_count() == before + 1
    trailers = trailers_of(platform.remote, "refs/heads/main")
    assert trailers["Alias"] == "@candidate" and trailers["Delivery-Id"] == "d-42" and trailers["Trigger"] == "workflow"
    assert git(platform.remote, "show", "refs/heads/main:environments/dev/release/kustomization.yaml").count(DIGEST)


def test_an_older_build_that_finishes_last_does_not_win(platform: PromoRepo, registry, installed: Installed,
                                                        tmp_path: Path):  # noqa: F811
    """Issue 14, 2.4: runs finish in build order; the run that built v1 after @candidate moved to v2 skips."""
    registry.set_alias("candidate", registry.v2)
    wf = _workflows(platform)
    context = {"vars.MLFLOW_TRACKING_URI": registry.url, "needs.plan.outputs.ref": f"{WINE}@candidate",
               "needs.plan.outputs.environment": "dev", "needs.build.outputs.version": registry.v1,
               "needs.build.outputs.image": f"registry.example.com/ml/wine-classifier:v{registry.v1}"}
    before = platform.remote_head()
    promote, _ = run_step(find_step(wf, "promote", "promote", "gitops-tool promote"), platform.root, tmp_path,
                          context, [installed.bin])
    assert promote.returncode == 0, promote.stderr
    assert f"is version {registry.v2} now, not {registry.v1} built by this run" in promote.stdout
    assert platform.remote_head() == before


def test_reconcile_dispatches_each_drift_to_promote_and_commits_nothing(platform: PromoRepo, registry,
                                                                       installed: Installed, tmp_path: Path):  # noqa: F811
    """Issue 14, 2.5: reconcile committed the image_template fallback for versions nobody built; now every
    drift goes through promote.yaml, whose build job builds first."""
    registry.set_alias("challenger", registry.v2)  # staging has never been promoted: drift
    wf = _workflows(platform)
    step = find_step(wf, "reconcile", "reconcile", "gitops-tool reconcile")
    before = platform.remote_head()
    with RecordingServer(lambda rec: (204, {}, b"")) as github:
        result, _ = run_step(step, platform.root, tmp_path, {"vars.MLFLOW_TRACKING_URI": registry.url,
                                                             "secrets.GITHUB_TOKEN": "token-1"}, [installed.bin],
                             GITHUB_EVENT_NAME="schedule", GITHUB_API_URL=github.url,
                             GITHUB_REPOSITORY="acme/platform")
    assert result.returncode == 0, result.stdout + result.stderr
    dispatches = [(r.path, json.loads(r.body), r.headers.get("Authorization")) for r in github.requests]
    assert ("/repos/acme/platform/actions/workflows/promote.yaml/dispatches",
            {"ref": "main", "inputs": {"model": WINE, "alias": "challenger", "environment": "staging"}},
            "Bearer token-1") in dispatches
    assert platform.remote_head() == before
    assert f"dispatched promote.yaml for {WINE}@challenger -> staging" in (tmp_path / "github_summary").read_text()


def test_reconcile_fails_the_step_when_the_registry_is_down(platform: PromoRepo, installed: Installed,
                                                           tmp_path: Path):
    """Issue 14, 2.3: `reconcile | tee` reported success when reconcile failed."""
    step = find_step(_workflows(platform), "reconcile", "reconcile", "gitops-tool reconcile")
    result, _ = run_step(step, platform.root, tmp_path, {"vars.MLFLOW_TRACKING_URI": "http://127.0.0.1:9"},
                         [installed.bin], GITHUB_EVENT_NAME="schedule")
    assert result.returncode == 1, result.stdout
    assert json.loads(result.stdout)["ok"] is False  # -o json: the failure is JSON on stdout too


def test_a_push_refused_by_branch_protection_is_named(registry, installed: Installed, tmp_path: Path):  # noqa: F811
    """Issue 14, 2.8: GitHub refuses pushes to a protected branch; the step says what to change."""
    repo = make_repo(tmp_path / "protected", registry.url)
    hook = repo.remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'error: GH006: Protected branch update failed for refs/heads/main.' >&2\n"
                    "echo 'error: Changes must be made through a pull request.' >&2\nexit 1\n")
    hook.chmod(0o755)
    registry.set_alias("candidate", registry.v1)
    context = {"vars.MLFLOW_TRACKING_URI": registry.url, "needs.plan.outputs.ref": f"{WINE}@candidate",
               "needs.plan.outputs.environment": "dev"}
    step = find_step(_workflows(repo), "promote", "promote", "gitops-tool promote")
    result, _ = run_step(step, repo.root, tmp_path, context, [installed.bin])
    assert result.returncode == 1
    assert "::error::branch protection refused the push to main" in result.stdout
    assert "gitops-tool promote --pr" in result.stdout


def test_the_validate_steps_pass_strict_only_with_real_values(installed: Installed, tmp_path: Path):
    """Issue 14, 3: the generated validate workflow runs --strict; init takes the real values."""
    real = tmp_path / "real"
    made = subprocess.run([str(installed.bin / "gitops-tool"), "init", str(real), "--repo-url",
                           "https://github.com/acme/ml-platform.git", "--registry", "ghcr.io/acme",
                           "--host", "ml.acme.io", "--prod-cluster", "https://prod.k8s.acme.io"],
                          capture_output=True, text=True, timeout=120)
    assert made.returncode == 0, made.stderr
    placeholder = tmp_path / "placeholder"
    subprocess.run([str(installed.bin / "gitops-tool"), "init", str(placeholder)], check=True, capture_output=True)
    for root, code in ((real, 0), (placeholder, 1)):
        wf = workflow_files(load_config(root / "gitops.yaml"))
        for name in ("Generated files are up to date", "gitops-tool validate"):
            result, _ = run_step(find_step(wf, "validate", "validate", name), root, tmp_path, {}, [installed.bin])
            expected = 0 if name.startswith("Generated") else code
            assert result.returncode == expected, f"{root.name} {name}: {result.stdout}{result.stderr}"
    assert "'ghcr.io/example-org/gitops-tool:" in result.stdout and "(--strict)" in result.stdout


def test_every_step_of_the_init_directory_is_covered_here(platform: PromoRepo):
    """A new shell step needs a test that runs it; actions (uses:) are pinned and schema-checked instead."""
    ran = {("promote", "plan", "Resolve"), ("promote", "build", "Build and push unless the tag exists"),
           ("promote", "promote", "gitops-tool promote"),
           ("reconcile", "reconcile", "gitops-tool reconcile --dry-run, then dispatch promote.yaml"),
           ("validate", "validate", "Generated files are up to date"), ("validate", "validate", "gitops-tool validate")}
    elsewhere = {"Install gitops-tool": "tests/test_release.py", "Git identity for commits": "two git config lines"}
    found = set()
    for rel, wf in _workflows(platform).items():
        for job_id, job in wf["jobs"].items():
            for step in job["steps"]:
                if "run" in step and step["name"] not in elsewhere:
                    found.add((rel.rsplit("/", 1)[1].removesuffix(".yaml"), job_id, step["name"]))
                for needed in re.findall(r"hashFiles\('([^']+)'\)", json.dumps(step)):
                    assert (platform.root / needed).exists(), f"{rel} {step['name']} hashes {needed}"
    assert found == ran
