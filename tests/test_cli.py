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
    result = run_cli("render", "platform/main", cwd=project)
    assert result.returncode == 0
    assert "kind: StatefulSet" in result.stdout and "namespace: mlflow\n" in result.stdout
    serving = run_cli("render", "dev", cwd=project)
    assert serving.returncode == 0 and "namespace: models-dev" in serving.stdout
    assert "kind: StatefulSet" not in serving.stdout  # a serving overlay runs no MLflow stack


def test_render_unknown_env(project: Path):
    result = run_cli("render", "qa", cwd=project)
    assert result.returncode == 2  # ENV is a command-line argument: a usage error
    assert "no platform instance or environment 'qa' (known: platform/main, dev, staging, prod)" in result.stderr


def test_kustomize_failure_shows_its_stderr_and_exits_1(project: Path):
    kustomization = project / "environments/dev/kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("../../base", "../../no-such-base"))
    for args in (["render", "dev"], ["validate", "dev"]):
        result = run_cli(*args, cwd=project)
        assert result.returncode == 1, args
        assert "no-such-base" in result.stdout + result.stderr


def test_validate_finding_format_and_exit(project: Path, schema_dir: Path):
    patch = project / "environments/platform/main/patches/typo.yaml"
    patch.parent.mkdir()
    patch.write_text("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: mlflow\nspec:\n  replicaz: 3\n")
    assert run_cli("generate", cwd=project).returncode == 0
    result = run_cli("validate", "--schema-dir", str(schema_dir), cwd=project)
    assert result.returncode == 1
    lines = [line for line in result.stdout.splitlines() if line.startswith("platform/main: ")]
    assert lines and lines[0].startswith("platform/main: Deployment/mlflow: ")
    assert "replicaz" in lines[0]
    assert "dev: " not in result.stdout.replace("FAILED: platform/main, dev", "")


def test_validate_passes_after_init_with_the_packaged_schemas(project: Path):
    result = run_cli("validate", cwd=project)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 error(s), 0 unchecked" in result.stdout


def test_validate_reports_kinds_without_schemas_and_says_what_to_do(project: Path):
    patches = project / "environments" / "dev" / "patches"
    patches.mkdir(exist_ok=True)
    (patches / "widget.yaml").write_text("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    kustomization = project / "environments" / "dev" / "kustomization.yaml"
    kustomization.write_text(kustomization.read_text().replace("  - ../../base/serving\n", "  - ../../base/serving\n  - patches/widget.yaml\n"))
    result = run_cli("validate", "dev", cwd=project)
    assert result.returncode == 1
    assert "dev: Widget/w: apiVersion: unchecked: no schema for example.com/v1 Widget" in result.stdout
    assert "gitops-tool schemas pull" in result.stderr and "--allow-unchecked" in result.stderr
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


def test_init_prod_cluster_url_or_in_cluster(tmp_path: Path):
    from gitops_tool.config import load_config

    remote = run_cli("init", str(tmp_path / "a"), "--prod-cluster", "https://k8s.prod.acme.io:6443")
    assert remote.returncode == 0, remote.stderr
    cfg = load_config(tmp_path / "a" / "gitops.yaml")
    assert cfg.env("prod").cluster.server == "https://k8s.prod.acme.io:6443"
    local = run_cli("init", str(tmp_path / "b"), "--prod-cluster", "in-cluster")
    assert local.returncode == 0, local.stderr
    cfg = load_config(tmp_path / "b" / "gitops.yaml")
    assert cfg.env("prod").cluster.name == "in-cluster" and set(cfg.clusters) == {"in-cluster"}
    bad = run_cli("init", str(tmp_path / "c"), "--prod-cluster", "prod.acme.io")
    assert bad.returncode == 1 and "--prod-cluster 'prod.acme.io': not an https:// API server URL" in bad.stderr
    assert not (tmp_path / "c").exists()
