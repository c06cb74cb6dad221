"""Steps 2 and 3, edit the overlay and validate it: write the release files, render, check."""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from gitops_tool.errors import GitopsError
from gitops_tool.kustomize.release_edit import ReleaseEdit, plan_release_edit


def apply_edit(env_dir: Path, edit: ReleaseEdit, root: Path) -> tuple[list[Path], str]:
    """Write the edit; returns the changed files and a unified diff of them.

    All-or-nothing: every file is first written beside its target, then renamed over it, so a
    full disk or a read-only tree leaves the release files exactly as they were.
    """
    changes = plan_release_edit(env_dir, edit)
    diff = []
    for path, text in changes.items():
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        rel = path.relative_to(root).as_posix()
        diff += difflib.unified_diff(old.splitlines(True), text.splitlines(True), f"a/{rel}", f"b/{rel}")
    staged: list[tuple[Path, Path]] = []
    try:
        for path, text in changes.items():
            tmp = path.with_name(f".{path.name}.gitops-tool.tmp")
            staged.append((tmp, path))
            tmp.write_text(text, encoding="utf-8")
    except OSError as exc:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise GitopsError(f"{staged[-1][1]}: cannot write: {exc.strerror or exc}; nothing changed") from None
    for tmp, path in staged:
        os.replace(tmp, path)
    return list(changes), "".join(diff)


def schema_dir_from_env() -> Path | None:
    value = os.environ.get("GITOPS_TOOL_SCHEMA_DIR")
    return Path(value) if value else None


def validate_env(env: str, env_dir: Path, schema_dir: Path | None) -> None:
    """The same checks as `gitops-tool validate ENV`; only errors block (unchecked CRDs are reported there).

    Skipped when the validated-render cache knows these inputs, release values aside (kustomize.render_cache)."""
    from gitops_tool.kustomize import render_cache
    from gitops_tool.validate.kube_schemas import K8S_VERSION

    key = render_cache.render_key(env, env_dir, schema_dir, K8S_VERSION)
    if key is not None and render_cache.is_validated(key):
        return
    from gitops_tool.kustomize.render import render
    from gitops_tool.validate import validate_environment

    findings = [f for f in validate_environment(env, render(env_dir), schema_dir=schema_dir)
                if f.severity == "error"]
    if findings:
        lines = "\n  ".join(str(f) for f in findings[:20])
        raise GitopsError(f"environment {env} does not validate after the edit; nothing committed:\n  {lines}")
    if key is not None:
        render_cache.record_validated(key, env)
