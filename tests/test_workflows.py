"""The generated GitHub Actions workflows: GitHub's schema (real check-jsonschema), the project's rules,
and the resolve script run for real with bash and jq."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from gitops_tool.config import Config, load_config_text
from gitops_tool.platform.workflow_scripts import PLAN_SCRIPT
from gitops_tool.platform.workflows import workflow_files
from gitops_tool.project import starter_config
from gitops_tool.yamlio import dump_docs

CHECK_JSONSCHEMA = Path(sys.executable).parent / "check-jsonschema"
PINNED = re.compile(r"^[\w.-]+/[\w./-]+@(?:[0-9a-f]{40}|v\d+\.\d+\.\d+)$")
COMMAND = re.compile(r"\bgitops-tool\s+([a-z][a-z-]*)(?:\s+([a-z][a-z-]*))?")
FLAG = re.compile(r"(?<![\w$-])(--[a-z][a-z-]*)")


def config(text: str | None = None) -> Config:
    return load_config_text(text or starter_config())


def storage_only() -> Config:
    """Storage mode; prod stays on its own cluster and reaches the platform's MinIO at its public endpoint."""
    text = starter_config()
    assert "    mode: image\n" in text and "    bucket: mlflow-artifacts\n" in text
    cfg = config(text.replace("    mode: image\n", "    mode: storage\n").replace(
        "    bucket: mlflow-artifacts\n", "    bucket: mlflow-artifacts\n    public_endpoint: https://s3.example.com\n"))
    assert {m.mode for m in cfg.models.values()} == {"storage"} and cfg.env("prod").cluster.name == "prod"
    return cfg


def on_ghcr() -> Config:
    return config(starter_config().replace("registry.example.com/ml/", "ghcr.io/example-org/"))


TOOL_CHECKOUT = 'tool:\n  package: "."\n  e2e_tests: tests/e2e\n  validate_strict: false\n'


def with_tool(text: str) -> Config:
    text_ = starter_config()
    assert "\nargocd:\n" in text_
    return config(text_.replace("\nargocd:\n", f"\n{text}\nargocd:\n", 1))


def tool_checkout() -> Config:
    """Like this repository's gitops.yaml: the tool is the checkout, and it has end-to-end tests."""
    return with_tool(TOOL_CHECKOUT)


def in_image() -> Config:
    return with_tool("tool:\n  run: image\n")


def written(cfg: Config, folder: Path) -> dict[str, Path]:
    """Each workflow dumped the way `generate` writes it."""
    paths = {}
    for rel, doc in workflow_files(cfg).items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(dump_docs([doc]), encoding="utf-8")
        paths[rel] = path
    return paths


def parsed(cfg: Config, tmp_path: Path) -> dict[str, dict]:
    """Read back with PyYAML, as a YAML 1.1 reader sees them (`on:` is the key True)."""
    out = {}
    for rel, path in written(cfg, tmp_path).items():
        doc = yaml.safe_load(path.read_text())
        doc["on"] = doc.pop(True)
        out[rel] = doc
    return out


def check_schema(*paths: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(CHECK_JSONSCHEMA), "--builtin-schema", "vendor.github-workflows", *map(str, paths)],
                          capture_output=True, text=True, timeout=120)


def steps(workflows: dict[str, dict]):
    for rel, wf in workflows.items():
        for job_id, job in wf["jobs"].items():
            for step in job["steps"]:
                yield rel, job_id, step


def scripts(workflows: dict[str, dict]):
    for rel, job_id, step in steps(workflows):
        if "run" in step:
            yield f"{rel} {job_id} {step.get('name')!r}", step["run"]


ALL_CONFIGS = {"starter": config, "storage": storage_only, "ghcr": on_ghcr, "checkout": tool_checkout,
               "image": in_image}


@pytest.fixture(params=list(ALL_CONFIGS))
def workflows(request, tmp_path: Path) -> dict[str, dict]:
    return parsed(ALL_CONFIGS[request.param](), tmp_path)


# --- GitHub's schema ------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", list(ALL_CONFIGS.values()), ids=list(ALL_CONFIGS))
def test_every_workflow_passes_githubs_schema(make, tmp_path: Path):
    cfg = make()
    paths = written(cfg, tmp_path)
    names = ("promote", "reconcile", "validate") + (("e2e-kind",) if cfg.tool["e2e_tests"] else ())
    assert set(paths) == {f".github/workflows/{n}.yaml" for n in names}
    result = check_schema(*paths.values())
    assert result.returncode == 0, result.stdout + result.stderr
    for path in paths.values():
        assert path.read_text().splitlines()[2] == "name: " + path.stem  # header, then the document
        assert "\non:\n" in path.read_text()


def test_the_schema_check_catches_a_broken_workflow(tmp_path: Path):
    path = written(config(), tmp_path)[".github/workflows/reconcile.yaml"]
    path.write_text(path.read_text().replace("runs-on:", "run-on:"), encoding="utf-8")
    result = check_schema(path)
    assert result.returncode == 1, result.stdout
    assert "run-on" in result.stdout or "runs-on" in result.stdout


# --- the project's rules ----------------------------------------------------------------------------------

def test_permissions_are_empty_at_the_top_and_granted_per_job(workflows):
    writers = {}
    for rel, wf in workflows.items():
        assert wf["permissions"] == {}, rel
        for job_id, job in wf["jobs"].items():
            assert "permissions" in job, f"{rel} {job_id}"
            granted = {k for k, v in job["permissions"].items() if v == "write"}
            if granted:
                writers[f"{rel.rsplit('/', 1)[1]}:{job_id}"] = granted
    build = writers.pop("promote.yaml:build", set())
    # reconcile commits nothing: it starts promote.yaml for each drift (actions: write). The promote job opens
    # pull requests for prod (approval: pull_request, the starter's default).
    assert writers == {"promote.yaml:promote": {"contents", "pull-requests"}, "reconcile.yaml:reconcile": {"actions"}}
    assert build <= {"packages"}

def test_only_a_ghcr_build_may_write_packages(tmp_path: Path):
    assert parsed(on_ghcr(), tmp_path / "g")[".github/workflows/promote.yaml"]["jobs"]["build"]["permissions"] == {
        "contents": "read", "packages": "write"}
    assert parsed(config(), tmp_path / "s")[".github/workflows/promote.yaml"]["jobs"]["build"]["permissions"] == {
        "contents": "read"}


def test_every_action_is_pinned_to_a_sha_or_an_exact_release(workflows):
    used = [step["uses"] for _, _, step in steps(workflows) if "uses" in step]
    assert used
    for ref in used:
        assert PINNED.match(ref), f"{ref} is not pinned to a full SHA or vX.Y.Z"


def test_promotions_are_serialised_per_environment(workflows):
    promote = workflows[".github/workflows/promote.yaml"]
    committers = [job for job in promote["jobs"].values()
                  if any(re.search(r"gitops-tool promote(?!.*--dry-run)", s.get("run", "")) for s in job["steps"])]
    assert len(committers) == 1
    group = committers[0]["concurrency"]
    assert "environment" in group["group"] and group["cancel-in-progress"] is False
    assert workflows[".github/workflows/reconcile.yaml"]["concurrency"]["cancel-in-progress"] is False


def test_no_expression_is_interpolated_into_a_script(workflows):
    """Inputs and payloads reach scripts only through env: (GitHub's script-injection advice)."""
    for where, script in scripts(workflows):
        assert "${{" not in script, where
    promote = workflows[".github/workflows/promote.yaml"]
    plan_env = promote["jobs"]["plan"]["steps"][0]["env"]
    assert "github.event.client_payload.model" in plan_env["MODEL"] and "inputs.model" in plan_env["MODEL"]


def _invocations(script: str):
    for line in script.replace("\\\n", " ").splitlines():
        if line.lstrip().startswith("#"):
            continue
        for match in COMMAND.finditer(line):
            yield match, line[match.end():]


def command_problems(workflows: dict[str, dict]) -> tuple[list[str], set[str]]:
    """Commands and flags the scripts use that the real CLI does not have; and the commands used."""
    import click

    from gitops_tool.cli.main import cli

    problems, seen = [], set()
    for where, script in scripts(workflows):
        for match, rest in _invocations(script):
            name, sub = match.groups()
            command = cli.commands.get(name)
            if command is None:
                problems.append(f"{where}: `gitops-tool {name}` is not a command")
                continue
            if isinstance(command, click.Group):
                if sub not in command.commands:
                    problems.append(f"{where}: `gitops-tool {name} {sub}` is not a command")
                    continue
                command = command.commands[sub]
            else:
                rest = f"{sub or ''} {rest}"
            options = {opt for param in command.params for opt in param.opts}
            problems += [f"{where}: `gitops-tool {name}` has no {flag}"
                         for flag in FLAG.findall(rest.split("|")[0]) if flag not in options]
            seen.add(name)
    return problems, seen


def test_every_gitops_tool_command_and_flag_exists(workflows):
    problems, seen = command_problems(workflows)
    assert problems == []
    assert {"generate", "validate", "promote", "reconcile"} <= seen


def test_the_command_check_catches_unknown_commands_and_flags():
    run = "gitops-tool deploy x\ngitops-tool promote m@a --evn dev | tee --x\ngitops-tool webhook nope\n"
    problems, _ = command_problems({"w": {"jobs": {"j": {"steps": [{"name": "s", "run": run}]}}}})
    assert any("`gitops-tool deploy` is not a command" in p for p in problems)
    assert any("has no --evn" in p for p in problems)
    assert not any("--x" in p for p in problems)  # after the pipe: another program's flag
    assert len(problems) == 3

def test_dispatch_inputs_follow_gitops_yaml():
    promote = workflow_files(config())[".github/workflows/promote.yaml"]
    inputs = promote["on"]["workflow_dispatch"]["inputs"]
    assert inputs["model"]["options"] == ["wine-classifier"] and inputs["model"]["required"] is True
    assert inputs["environment"]["options"] == ["auto", "dev", "staging", "prod"]
    assert promote["on"]["repository_dispatch"] == {"types": ["mlflow-model-alias"]}


def test_storage_models_need_no_image_build():
    jobs = workflow_files(storage_only())[".github/workflows/promote.yaml"]["jobs"]
    assert "build" not in jobs and jobs["promote"]["needs"] == ["plan"]
    assert "needs.build" not in repr(jobs)


def test_image_build_skips_existing_tags_and_builds_with_mlflow():
    build = workflow_files(config())[".github/workflows/promote.yaml"]["jobs"]["build"]
    script = build["steps"][-1]["run"]
    assert 'docker manifest inspect "$image"' in script
    assert 'mlflow models generate-dockerfile -m "models:/$REGISTERED_MODEL/$version" -d model-image' in script
    assert "python -m gitops_tool.platform.model_image model-image" in script
    assert 'docker build -t "$image" model-image' in script
    assert build["if"] == "needs.plan.outputs.mode == 'image'"


def test_validate_runs_check_and_strict_validate_and_tests_only_in_the_tools_checkout():
    job = workflow_files(config())[".github/workflows/validate.yaml"]["jobs"]["validate"]
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert "gitops-tool generate --check" in runs and "--strict" in runs and "--allow-unchecked" not in runs
    assert "pytest" not in runs  # a team's repository has no tests
    assert job["steps"][-1]["env"] == {"SCHEMA_DIR": "${{ vars.GITOPS_TOOL_SCHEMA_DIR }}", "STRICT": "1"}
    own = workflow_files(tool_checkout())[".github/workflows/validate.yaml"]["jobs"]["validate"]
    assert own["steps"][-1]["run"] == "python -m pytest -q --ignore=tests/e2e\n"
    assert own["steps"][-2]["env"]["STRICT"] == "0"


@pytest.mark.skipif(not shutil.which("shellcheck"), reason="shellcheck is not installed")
def test_scripts_pass_shellcheck(workflows, tmp_path: Path):
    for index, (where, script) in enumerate(scripts(workflows)):
        path = tmp_path / f"script{index}.sh"
        path.write_text(script)
        result = subprocess.run(["shellcheck", "--shell=bash", "--severity=warning", str(path)],
                                capture_output=True, text=True)
        assert result.returncode == 0, f"{where}:\n{result.stdout}"


# --- the resolve step, run for real -----------------------------------------------------------------------

needs_jq = pytest.mark.skipif(not (shutil.which("jq") and shutil.which("bash")), reason="needs bash and jq")


def run_plan(tmp_path: Path, cfg: Config | None = None, event: str = "repository_dispatch",
             github_ref: str = "refs/heads/main", **values: str) -> tuple[int, dict, str]:
    step = workflow_files(cfg or config())[".github/workflows/promote.yaml"]["jobs"]["plan"]["steps"][0]
    env = {"PATH": os.environ["PATH"], "GITHUB_OUTPUT": str(tmp_path / "out"),
           "GITHUB_STEP_SUMMARY": str(tmp_path / "summary"), "PLATFORM": step["env"]["PLATFORM"],
           "AUTO_ENV": step["env"]["AUTO_ENV"], "BRANCH": step["env"]["BRANCH"],
           "GITHUB_EVENT_NAME": event, "GITHUB_REF": github_ref}
    env |= {key: values.get(key.lower(), "") for key in ("MODEL", "ALIAS", "VERSION", "ENVIRONMENT", "DELIVERY_ID")}
    result = subprocess.run(["bash", "-e", "-c", PLAN_SCRIPT], env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=30)
    out_file = tmp_path / "out"
    outputs = dict(line.split("=", 1) for line in out_file.read_text().splitlines()) if out_file.exists() else {}
    return result.returncode, outputs, result.stdout + result.stderr


@needs_jq
def test_plan_maps_an_alias_to_its_environment(tmp_path: Path):
    code, out, log = run_plan(tmp_path, model="wine-classifier", alias="champion", delivery_id="d-1")
    assert code == 0, log
    assert out == {"ref": "wine-classifier@champion", "environment": "prod", "model": "wine-classifier",
                   "registered_model": "wine-classifier", "mode": "image", "delivery_id": "d-1"}
    assert "delivery d-1" in (tmp_path / "summary").read_text()


@needs_jq
def test_plan_takes_a_version_with_an_explicit_environment(tmp_path: Path):
    code, out, log = run_plan(tmp_path, model="wine-classifier", version="7", environment="staging")
    assert code == 0, log
    assert out["ref"] == "wine-classifier/7" and out["environment"] == "staging"


@needs_jq
@pytest.mark.parametrize("values, message", [
    ({"model": "nope", "alias": "champion"}, "model 'nope' is not in gitops.yaml"),
    ({"model": "wine-classifier"}, "give an alias or a version"),
    ({"model": "wine-classifier", "version": "7", "environment": "auto"}, "no environment"),
    ({"model": "wine-classifier", "alias": "unmapped"}, "no environment"),
    ({"model": "wine-classifier", "alias": "champion", "environment": "qa"}, "environment 'qa' is not in"),
    ({"model": "wine-classifier", "version": "1; rm -rf /"}, "is not a positive integer"),
])
def test_plan_refuses_bad_requests(tmp_path: Path, values: dict, message: str):
    code, out, log = run_plan(tmp_path, **values)
    assert code == 1 and out == {}
    assert message in log


@needs_jq
def test_plan_never_executes_payload_text(tmp_path: Path):
    hostile = "$(touch pwned)`touch pwned2`"
    code, _, log = run_plan(tmp_path, model=hostile, alias=hostile, delivery_id=hostile)
    assert code == 1 and "is not in gitops.yaml" in log
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()


def test_flag_parser_sees_flags_after_line_continuations():
    script = 'gitops-tool promote "$REF" \\\n  --env x ${IMAGE:+--image-tag "$IMAGE"} | tee --append f\n'
    ((_, rest),) = list(_invocations(script))
    assert FLAG.findall(rest.split("|")[0]) == ["--env", "--image-tag"]


@needs_jq
def test_a_dispatch_with_alias_and_version_promotes_the_alias(tmp_path: Path):
    """Issue 14, 2.4: the receiver sends both; pinning the version dropped the Alias trailer and let an
    older alias move land last. The alias is resolved when the promotion runs: the newest state wins."""
    code, out, log = run_plan(tmp_path, model="wine-classifier", alias="champion", version="3", delivery_id="d-9")
    assert code == 0, log
    assert out["ref"] == "wine-classifier@champion" and out["environment"] == "prod" and out["delivery_id"] == "d-9"
    promote = workflow_files(config())[".github/workflows/promote.yaml"]["jobs"]["promote"]["steps"][-1]
    assert promote["env"]["DELIVERY_ID"] == "${{ needs.plan.outputs.delivery_id }}"
    assert '--delivery-id "$DELIVERY_ID"' in promote["run"]


@needs_jq
@pytest.mark.parametrize("delivery", ["$(id)", "a b", "x" * 129])
def test_plan_refuses_a_delivery_id_that_is_not_one(tmp_path: Path, delivery: str):
    code, out, log = run_plan(tmp_path, model="wine-classifier", alias="champion", delivery_id=delivery)
    assert code == 1 and out == {} and "is not a delivery id" in log


@needs_jq
def test_a_manual_run_from_another_branch_is_refused(tmp_path: Path):
    """Issue 14, 2.6: workflow_dispatch runs the other branch's workflow; promotions commit to main."""
    code, out, log = run_plan(tmp_path, event="workflow_dispatch", github_ref="refs/heads/feature",
                              model="wine-classifier", alias="champion")
    assert code == 1 and out == {}
    assert "run this workflow from main (it was started from refs/heads/feature)" in log
    (tmp_path / "out").unlink(missing_ok=True)
    code, out, _ = run_plan(tmp_path, event="workflow_dispatch", github_ref="refs/heads/main",
                            model="wine-classifier", alias="champion")
    assert code == 0 and out["ref"] == "wine-classifier@champion"


def test_jobs_that_commit_check_out_the_branch_tip_with_history(workflows):
    """Issue 14, 2.2: the default checkout is the event's commit at depth 1."""
    promote = workflows[".github/workflows/promote.yaml"]["jobs"]
    checkout = promote["promote"]["steps"][0]
    assert checkout["uses"].startswith("actions/checkout@") and checkout["with"] == {"ref": "main", "fetch-depth": 0}
    assert workflows[".github/workflows/reconcile.yaml"]["jobs"]["reconcile"]["steps"][0]["with"]["ref"] == "main"
    if "build" in promote:
        assert promote["build"]["steps"][0]["with"]["ref"] == "main"


def test_every_script_runs_with_errexit_and_pipefail(workflows):
    """Issue 14, 2.3: `reconcile | tee` without pipefail reported success when reconcile failed."""
    for wf in workflows.values():
        assert wf["defaults"] == {"run": {"shell": "bash"}}  # -eo pipefail; a container job would use sh
    for where, script in scripts(workflows):
        if "|" in script.replace("||", "") or "\n" in script.strip():
            assert script.startswith("set -euo pipefail\n"), where


def test_the_e2e_filter_covers_the_tool_when_it_is_the_checkout():
    """Issue 14, 2.7: a change to gitops_tool/ or pyproject.toml changes what the e2e run deploys."""
    paths = workflow_files(tool_checkout())[".github/workflows/e2e-kind.yaml"]["on"]["pull_request"]["paths"]
    assert {"gitops_tool/**", "pyproject.toml", "tests/e2e/**", "gitops.yaml"} <= set(paths)
    assert ".github/workflows/e2e-kind.yaml" not in workflow_files(config())  # a team's repo has no tests/e2e


def test_the_tool_comes_from_gitops_yaml_and_is_cached_by_its_spec():
    """Issue 14, 2 and 2.9: no `pip install .` (a team's repo has no pyproject.toml); one install per spec."""
    def install(cfg: Config, job: str = "reconcile", wf: str = "reconcile") -> tuple[dict, dict]:
        steps_ = workflow_files(cfg)[f".github/workflows/{wf}.yaml"]["jobs"][job]["steps"]
        cache = next(s for s in steps_ if s.get("uses", "").startswith("actions/cache@"))
        return cache, next(s for s in steps_ if s["name"] == "Install gitops-tool")

    from gitops_tool import __version__

    cache, step = install(config())
    assert step["env"]["SPEC"] == f"gitops-tool=={__version__}" and step["env"]["REINSTALL"] == "0"
    assert cache["with"]["path"] == step["env"]["VENV"]
    pinned, git_url = with_tool("tool:\n  package: gitops-tool==9.9.9\n"), with_tool(
        "tool:\n  package: git+https://github.com/acme/gitops-tool@v9.9.9\n")
    assert install(pinned)[1]["env"]["SPEC"] == "gitops-tool==9.9.9"
    assert install(pinned, "build", "promote")[1]["env"]["SPEC"] == "gitops-tool[mlflow]==9.9.9"
    assert install(git_url, "build", "promote")[1]["env"]["SPEC"] == (
        "gitops-tool[mlflow] @ git+https://github.com/acme/gitops-tool@v9.9.9")
    keys = {install(c)[0]["with"]["key"] for c in (config(), pinned, git_url)}
    assert len(keys) == 3  # a new spec is a new virtualenv
    own_cache, own = install(tool_checkout())
    assert own["env"]["SPEC"] == "." and own["env"]["REINSTALL"] == "1"
    assert own_cache["with"]["key"].endswith("-${{ hashFiles('pyproject.toml') }}")
    for _, _, s in steps({k: v for k, v in workflow_files(config()).items()}):
        assert s.get("with", {}).get("cache") is None  # setup-python's pip cache needs a requirements file


def test_the_image_mode_runs_jobs_in_images_gitops_tool():
    cfg = in_image()
    files = workflow_files(cfg)
    for wf, job in (("reconcile", "reconcile"), ("validate", "validate"), ("promote", "promote")):
        spec = files[f".github/workflows/{wf}.yaml"]["jobs"][job]
        assert spec["container"]["image"] == cfg.images["gitops_tool"], wf
        assert not any("Install gitops-tool" == s["name"] for s in spec["steps"]), wf
    build = files[".github/workflows/promote.yaml"]["jobs"]["build"]
    assert "container" not in build and any(s["name"] == "Install gitops-tool" for s in build["steps"])


def test_the_schedule_costs_at_most_a_few_thousand_runs_a_month():
    """Issue 14, 2.9: every 5 minutes was ~8,600 runs (and installs) a month."""
    cron = workflow_files(config())[".github/workflows/reconcile.yaml"]["on"]["schedule"][0]["cron"]
    minute = cron.split()[0]
    every = int(minute.split("/")[1]) if "/" in minute else 60
    assert 30 * 24 * 60 // every <= 3000, cron


# The first release of each action whose action.yml says `using: node24` (read from the actions' tags).
FIRST_NODE24 = {"actions/checkout": (5, 0, 0), "actions/setup-python": (6, 0, 0), "actions/cache": (5, 0, 0),
                "actions/upload-artifact": (6, 0, 0), "actions/download-artifact": (7, 0, 0),
                "docker/login-action": (4, 0, 0), "docker/setup-buildx-action": (4, 0, 0),
                "docker/build-push-action": (7, 0, 0), "helm/kind-action": (1, 13, 0)}
RELEASE_NAME = re.compile(r"\((?P<action>[\w.-]+/[\w.-]+) v(?P<version>\d+\.\d+\.\d+)\)")


def test_every_javascript_action_is_a_release_that_runs_on_node24(workflows):
    """Issue 14, 2.9: GitHub retires node20; the step name says which release the SHA is."""
    release = yaml.safe_load((Path(__file__).parents[1] / ".github/workflows/release.yaml").read_text())
    all_steps = [s for _, _, s in steps(workflows)] + [s for job in release["jobs"].values() for s in job["steps"]]
    for step in all_steps:
        if "uses" not in step:
            continue
        action = step["uses"].split("@")[0]
        named = RELEASE_NAME.search(step["name"])
        assert named and named["action"] == action, step["name"]
        if action in ("pypa/gh-action-pypi-publish",):  # a Docker action: no Node runtime
            continue
        assert action in FIRST_NODE24, f"{action}: which release moved it to node24?"
        assert tuple(map(int, named["version"].split("."))) >= FIRST_NODE24[action], step["name"]
