"""Shared fixtures: projects made by the real `init`, rendered with the real kustomize."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_SCHEMAS = REPO_ROOT.parent / "shared" / "schemas"


@pytest.fixture(autouse=True, scope="session")
def _private_cache_dir(tmp_path_factory) -> None:
    """The validated-render cache and the generate memo of this test session, not the user's."""
    os.environ["GITOPS_TOOL_CACHE_DIR"] = str(tmp_path_factory.mktemp("gitops-tool-cache"))


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
    from gitops_tool.kustomize.release import parse_image
    from gitops_tool.kustomize.release_edit import ReleaseEdit, plan_release_edit

    edit = ReleaseEdit(model, version, image=parse_image(image) if image else None, storage_uri=storage_uri)
    for path, text in plan_release_edit(root / "environments" / env, edit).items():
        path.write_text(text)


# -- the released artifact --------------------------------------------------------------------------


@dataclass(frozen=True)
class Installed:
    """The wheel and sdist `python -m build` made, and a fresh virtualenv with the wheel installed."""

    dist: Path
    wheel: Path
    sdist: Path
    venv: Path

    @property
    def bin(self) -> Path:
        return self.venv / "bin"


def runner_env(tmp: Path, **extra: str) -> dict[str, str]:
    """What a GitHub-hosted runner gives a step: the files GITHUB_OUTPUT, GITHUB_PATH, ... (a stand-in)."""
    for name in ("output", "path", "summary"):
        (tmp / f"github_{name}").touch()
    python_dir = tmp / "python-on-path"  # setup-python puts `python` on PATH
    python_dir.mkdir(exist_ok=True)
    if not (python_dir / "python").exists():
        (python_dir / "python").symlink_to(sys.executable)
    env = {"PATH": f"{python_dir}:/usr/local/bin:/usr/bin:/bin", "HOME": os.environ.get("HOME", str(tmp)),
           "GITHUB_OUTPUT": str(tmp / "github_output"), "GITHUB_PATH": str(tmp / "github_path"),
           "GITHUB_STEP_SUMMARY": str(tmp / "github_summary"), "GITHUB_EVENT_NAME": "workflow_dispatch",
           "GITHUB_REF": "refs/heads/main", "LANG": "C.UTF-8"}
    for key in ("PIP_FIND_LINKS", "PIP_CERT", "PIP_DEFAULT_TIMEOUT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL",
                "PIP_CONFIG_FILE"):
        if key in os.environ:
            env[key] = os.environ[key]
    return env | extra


@pytest.fixture(scope="session")
def installed(tmp_path_factory) -> Installed:
    """`python -m build` (the sdist, then the wheel built from the sdist), installed into a fresh virtualenv
    by the generated workflows' own install step (its cache-miss path)."""
    from gitops_tool.platform.workflow_steps import INSTALL_SCRIPT

    tmp = tmp_path_factory.mktemp("release")
    dist = tmp / "dist"
    built = subprocess.run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO_ROOT)],
                           capture_output=True, text=True, timeout=600)
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    (wheel,), (sdist,) = list(dist.glob("*.whl")), list(dist.glob("*.tar.gz"))
    venv = tmp / "venv"
    env = runner_env(tmp, SPEC=str(wheel), VENV=str(venv), REINSTALL="0")
    step = subprocess.run(["bash", "-e", "-c", INSTALL_SCRIPT], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=900)
    assert step.returncode == 0, step.stdout[-3000:] + step.stderr[-3000:]
    assert (tmp / "github_path").read_text() == f"{venv}/bin\n"
    return Installed(dist, wheel, sdist, venv)
