"""The CLI's contract: fast paths stay light, exit codes mean one thing each."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.conftest import run_cli

HEAVY = ("mlflow", "kubernetes", "sklearn", "git", "requests")


def _imported_modules(*args: str) -> set[str]:
    code = (
        "import sys\n"
        "from gitops_tool.cli.main import cli\n"
        f"try:\n    cli.main(args={list(args)!r}, prog_name='gitops-tool', standalone_mode=False)\n"
        "except SystemExit:\n    pass\n"
        "print('\\n'.join(sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(result.stdout.split())


def test_help_and_version_do_not_import_heavy_modules():
    for args in (["--help"], ["--version"], ["validate", "--help"], ["promote", "--help"], ["wait", "--help"]):
        loaded = _imported_modules(*args)
        assert not [m for m in loaded if m.split(".")[0] in HEAVY], args


def test_version():
    result = run_cli("--version")
    assert result.returncode == 0 and "gitops-tool, version" in result.stdout


def test_render_prints_kustomize_output(project: Path):
    result = run_cli("render", "dev", cwd=project)
    assert result.returncode == 0
    assert "kind: StatefulSet" in result.stdout and "namespace: mlflow-dev" in result.stdout


def test_render_unknown_env(project: Path):
    result = run_cli("render", "qa", cwd=project)
    assert result.returncode == 2  # ENV is a command-line argument: a usage error
    assert "environment 'qa' is not defined (known: dev, staging, prod)" in result.stderr


def test_kustomize_failure_shows_its_stderr_and_exits_1(project: Path):
    kustomization = project / "environments/dev/kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("../../base", "../../no-such-base"))
    for args in (["render", "dev"], ["validate", "dev"]):
        result = run_cli(*args, cwd=project)
        assert result.returncode == 1, args
        assert "no-such-base" in result.stdout + result.stderr


def test_validate_finding_format_and_exit(project: Path, schema_dir: Path):
    patch = project / "environments/staging/patches/typo.yaml"
    patch.parent.mkdir()
    patch.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: mlflow\nspec:\n  replicaz: 3\n")
    assert run_cli("generate", cwd=project).returncode == 0
    result = run_cli("validate", "--schema-dir", str(schema_dir), cwd=project)
    assert result.returncode == 1
    lines = [line for line in result.stdout.splitlines() if line.startswith("staging: ")]
    assert lines and lines[0].startswith("staging: Deployment/mlflow: ")
    assert "replicaz" in lines[0]
    assert "dev: " not in result.stdout.replace("FAILED: dev", "")


def test_validate_reports_unchecked_crds_without_schemas(project: Path):
    result = run_cli("validate", "dev", cwd=project)
    assert result.returncode == 1
    assert "dev: ServiceMonitor/mlflow: apiVersion: unchecked: no schema" in result.stdout
    assert run_cli("validate", "dev", "--allow-unchecked", cwd=project).returncode == 0


def test_internal_errors_exit_3(tmp_path: Path):
    code = (
        "import sys\nfrom gitops_tool.cli import main, commands\n"
        "commands.render = lambda *a, **k: 1 / 0\n"
        "main.cli.main(args=['render', 'dev'], prog_name='gitops-tool')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 3
    assert "ZeroDivisionError" in result.stderr and "internal error" in result.stderr


def test_committed_reference_platform_has_no_drift():
    root = Path(__file__).resolve().parents[1]
    result = run_cli("generate", "--check", cwd=root)
    assert result.returncode == 0, result.stdout + result.stderr
