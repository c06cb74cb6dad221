"""Shared fixtures: projects made by the real `init`, rendered with the real kustomize."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_SCHEMAS = REPO_ROOT.parent / "shared" / "schemas"


@pytest.fixture
def schema_dir() -> Path:
    if not (SHARED_SCHEMAS / "argoproj.io").is_dir():
        pytest.skip(f"CRD schemas not found at {SHARED_SCHEMAS} (../shared/schemas beside the repo)")
    return SHARED_SCHEMAS


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A fresh project made by `gitops-tool init` (the wine-classifier starter)."""
    from gitops_tool.project import init_project

    root = tmp_path / "platform"
    init_project(root)
    return root


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real console entry point in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "gitops_tool.cli.main", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=300,
    )


def render_docs(overlay: Path) -> list[dict]:
    from gitops_tool.kustomize.render import render

    return [d for d in yaml.safe_load_all(render(overlay)) if d]


def find(docs: list[dict], kind: str, name: str) -> dict:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"{kind}/{name} not rendered; have {[(d['kind'], d['metadata']['name']) for d in docs]}")


def write_release(root: Path, env: str, version: str, *, image: str | None = None,
                  storage_uri: str | None = None, model: str = "wine-classifier") -> None:
    """Write a release edit straight to disk, as a promotion would (no registry, no commit)."""
    from gitops_tool.kustomize.release import ReleaseEdit, parse_image, plan_release_edit

    edit = ReleaseEdit(model, version, image=parse_image(image) if image else None, storage_uri=storage_uri)
    for path, text in plan_release_edit(root / "environments" / env, edit).items():
        path.write_text(text)
