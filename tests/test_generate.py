"""`init` and `generate`: idempotent, deterministic, never fights promotions or user patches."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gitops_tool.errors import GitopsError
from gitops_tool.kustomize.release import read_release
from gitops_tool.project import generate, init_project
from tests.conftest import find, render_docs, run_cli, write_release


def _snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _promote(root: Path, env: str, version: str, image: str) -> None:
    write_release(root, env, version, image=image)


def test_init_writes_config_and_tree(project: Path):
    files = _snapshot(project)
    assert "gitops.yaml" in files and "gitops.schema.json" in files
    for env in ("dev", "staging", "prod"):
        assert f"environments/{env}/kustomization.yaml" in files
        assert f"environments/{env}/release/kustomization.yaml" in files
    assert "argocd/applications.yaml" in files and "base/platform/kustomization.yaml" in files
    assert files["gitops.yaml"].startswith(b"# yaml-language-server: $schema=./gitops.schema.json")


def test_init_refuses_to_overwrite(project: Path):
    before = _snapshot(project)
    with pytest.raises(GitopsError, match="already exists"):
        init_project(project)
    assert _snapshot(project) == before


def test_second_run_is_identical(project: Path):
    before = _snapshot(project)
    result = generate(project / "gitops.yaml")
    assert {a.action for a in result.actions} <= {"identical", "keep"}
    assert _snapshot(project) == before


def test_output_is_deterministic_across_directories(tmp_path: Path):
    one, two = tmp_path / "one", tmp_path / "two"
    init_project(one)
    init_project(two)
    assert _snapshot(one) == _snapshot(two)


def test_report_names_create_identical_update(project: Path):
    config = project / "gitops.yaml"
    config.write_text(config.read_text().replace("    workers: 2\n", "    workers: 3\n"))
    actions = {a.path: a.action for a in generate(config).actions}
    assert actions["environments/platform/main/generated/mlflow.yaml"] == "update"
    assert actions["environments/dev/generated/serving/wine-classifier.yaml"] == "identical"
    shutil.rmtree(project / "argocd")
    actions = {a.path: a.action for a in generate(config).actions}
    assert actions["argocd/project.yaml"] == "create"


def test_check_reports_drift_as_diff_and_writes_nothing(project: Path):
    config = project / "gitops.yaml"
    config.write_text(config.read_text().replace("    workers: 2\n", "    workers: 3\n"))
    before = _snapshot(project)
    result = run_cli("generate", "--check", cwd=project)
    assert result.returncode == 1
    assert "--- a/environments/platform/main/generated/mlflow.yaml" in result.stdout
    assert "-              value: '2'\n+              value: '3'" in result.stdout
    assert _snapshot(project) == before
    assert run_cli("generate", cwd=project).returncode == 0
    assert run_cli("generate", "--check", cwd=project).returncode == 0


def test_generate_keeps_promoted_tag(project: Path):
    _promote(project, "prod", "7", "registry.example.com/ml/wine-classifier:v7")
    config = project / "gitops.yaml"
    config.write_text(config.read_text().replace("image_template: \"{repository}:v{version}\"",
                                                  "image_template: \"{repository}:{version}\""))
    config.write_text(config.read_text().replace("    replicas: 3\n", "    replicas: 5\n"))
    release_before = (project / "environments/prod/release/kustomization.yaml").read_bytes()
    generate(config)
    assert (project / "environments/prod/release/kustomization.yaml").read_bytes() == release_before
    state = read_release(project / "environments/prod")["wine-classifier"]
    assert (state.version, state.image) == ("7", "registry.example.com/ml/wine-classifier:v7")
    isvc = find(render_docs(project / "environments/prod"), "InferenceService", "wine-classifier")
    assert isvc["spec"]["predictor"]["containers"][0]["image"] == "registry.example.com/ml/wine-classifier:v7"


def test_user_patches_are_kept_and_referenced(project: Path):
    patch = project / "environments/platform/main/patches/mlflow-workers.yaml"
    patch.parent.mkdir()
    patch.write_text(
        "# my own patch\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: mlflow\n"
        "  annotations:\n    team.example.com/owner: ml-platform\n"
    )
    result = generate(project / "gitops.yaml")
    assert {a.path: a.action for a in result.actions}["environments/platform/main/kustomization.yaml"] == "update"
    assert "path: patches/mlflow-workers.yaml" in (project / "environments/platform/main/kustomization.yaml").read_text()
    assert patch.read_text().startswith("# my own patch")
    deployment = find(render_docs(project / "environments/platform/main"), "Deployment", "mlflow")
    assert deployment["metadata"]["annotations"]["team.example.com/owner"] == "ml-platform"
    assert generate(project / "gitops.yaml").changed == []


def test_refuses_to_overwrite_a_file_it_did_not_generate(project: Path):
    target = project / "base/platform/mlflow.yaml"
    target.write_text("# hand-written\nkind: Deployment\n")
    config = project / "gitops.yaml"
    config.write_text(config.read_text().replace("    workers: 2\n", "    workers: 3\n"))
    before = _snapshot(project)
    with pytest.raises(GitopsError, match="did not generate.*base/platform/mlflow.yaml"):
        generate(config)
    assert _snapshot(project) == before


def test_removed_environment_loses_only_generated_files(project: Path):
    _promote(project, "dev", "1", "registry.example.com/ml/wine-classifier:v1")
    config = project / "gitops.yaml"
    text = config.read_text()
    start, end = text.index("  dev:\n"), text.index("  staging:\n")
    config.write_text((text[:start] + text[end:]).replace("      candidate: dev\n", ""))
    with pytest.raises(GitopsError, match="refusing to drop environment dev"):
        generate(config)  # its Argo CD Application would go, and prune the workloads with it
    assert (project / "environments/dev/kustomization.yaml").exists()
    actions = {a.path: a.action for a in generate(config, prune=True).actions}
    assert actions["environments/dev/kustomization.yaml"] == "delete"
    assert not (project / "environments/dev/kustomization.yaml").exists()
    assert not (project / "environments/dev/generated").exists()
    # promotion state is not generate's to delete
    assert (project / "environments/dev/release/kustomization.yaml").exists()


def test_dry_run_reports_and_writes_nothing(project: Path):
    config = project / "gitops.yaml"
    config.write_text(config.read_text().replace("    workers: 2\n", "    workers: 3\n"))
    before = _snapshot(project)
    result = run_cli("generate", "--dry-run", cwd=project)
    assert result.returncode == 0
    assert "   update  environments/platform/main/generated/mlflow.yaml" in result.stdout
    assert _snapshot(project) == before
