"""Apply a planned tree to disk: create / identical / update / delete, or just show the diff.

Nothing is written until every path has been checked, so a refusal leaves the tree as it was.
"""

from __future__ import annotations

import difflib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gitops_tool.errors import GitopsError
from gitops_tool.yamlio import is_generated

_UMASK = os.umask(0o022)
os.umask(_UMASK)
SCHEMA_ID = "https://gitops-tool.dev/schemas/gitops.schema.json"


@dataclass(frozen=True)
class FileAction:
    path: str
    action: str  # create | identical | update | delete | keep
    old: str | None = None
    new: str | None = None

    @property
    def changes(self) -> bool:
        return self.action in ("create", "update", "delete")

    def diff(self) -> str:
        old = (self.old or "").splitlines(keepends=True)
        new = (self.new or "").splitlines(keepends=True)
        a = f"a/{self.path}" if self.old is not None else "/dev/null"
        b = f"b/{self.path}" if self.new is not None else "/dev/null"
        return "".join(difflib.unified_diff(old, new, a, b))


def _owned(path: str, text: str) -> bool:
    return SCHEMA_ID in text if path.endswith(".json") else is_generated(text)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (FileNotFoundError, UnicodeDecodeError):  # not ours: generated files are UTF-8 text
        return None


def plan_actions(root: Path, generated: dict[str, str], create_once: dict[str, str],
                 managed_dirs: tuple[str, ...]) -> list[FileAction]:
    from gitops_tool.platform.dump_memo import FromDisk

    actions, foreign = [], []
    for rel, new in generated.items():
        if isinstance(new, FromDisk):  # read from this very file a moment ago: no second read
            actions.append(FileAction(rel, "identical", new, new))
            continue
        old = _read(root / rel)
        if old is None:
            actions.append(FileAction(rel, "create", None, new))
        elif old == new:
            actions.append(FileAction(rel, "identical", old, new))
        elif not _owned(rel, old):
            foreign.append(rel)
        else:
            actions.append(FileAction(rel, "update", old, new))
    for rel, new in create_once.items():
        old = _read(root / rel)
        actions.append(FileAction(rel, "create", None, new) if old is None else FileAction(rel, "keep", old, old))
    if foreign:
        raise GitopsError(
            "refusing to overwrite files gitops-tool did not generate (no generated-by header): "
            + ", ".join(foreign),
            hint="move your changes to environments/<env>/patches/ and delete the file, then run generate again",
        )
    return actions + _stale(root, set(generated) | set(create_once), managed_dirs)


def _stale(root: Path, planned: set[str], managed_dirs: tuple[str, ...]) -> list[FileAction]:
    """Generated files that the config no longer produces (e.g. a removed environment or model)."""
    stale = []
    for top in managed_dirs:
        unplanned = []
        for folder, _dirs, files in os.walk(root / top):  # plain strings: 5,000 Paths cost 0.3 s
            rel_folder = os.path.relpath(folder, root).replace(os.sep, "/")
            unplanned += [f"{rel_folder}/{name}" for name in files if f"{rel_folder}/{name}" not in planned]
        for rel in sorted(unplanned, key=lambda r: r.split("/")):  # the order Path sorting gave
            path = root / rel
            if not path.is_file() or _guards_user_files(path, root, planned):
                continue
            text = _read(path) or ""
            if is_generated(text):
                stale.append(FileAction(rel, "delete", text, None))
    return stale


def _guards_user_files(path: Path, root: Path, planned: set[str]) -> bool:
    """A generated .gitignore next to files of yours (secret values) stays, or `git add` would take them."""
    if path.name != ".gitignore":
        return False
    return any(p.is_file() and p.relative_to(root).as_posix() not in planned and not is_generated(_read(p) or "")
               for p in path.parent.iterdir() if p != path)


def guard_drops(root: Path, actions: list[FileAction], prune: bool) -> list[FileAction]:
    """Refuse to drop a model a release still serves, or a whole environment, unless ``prune``.

    Dropping base/serving/<model> under a release that references it breaks render, promote and the
    Argo CD sync; dropping an environment removes its Application, whose prune + finalizer would
    delete the workloads. With ``prune`` the releases that served the model are emptied too (the
    returned extra actions), so every remaining environment still renders."""
    from gitops_tool.kustomize.retire import plan_retire, references

    deleted = [a.path.split("/") for a in actions if a.action == "delete"]
    models = {p[2] for p in deleted if len(p) == 4 and p[:2] == ["base", "serving"] and p[3] == "kustomization.yaml"}
    envs = {p[1] for p in deleted if len(p) == 3 and p[0] == "environments" and p[2] == "kustomization.yaml"}
    # A dropped platform instance goes the same way: its Application would prune MLflow and PostgreSQL.
    envs |= {f"platform/{p[2]}" for p in deleted
             if len(p) == 4 and p[:2] == ["environments", "platform"] and p[3] == "kustomization.yaml"}
    env_dirs = [d for d in sorted((root / "environments").glob("*"))
                if d.is_dir() and d.name not in envs and d.name != "platform"]
    served = {(m, d.name): d for m in sorted(models) for d in env_dirs if references(d, m)}
    if not prune and (served or envs):
        what = [f"model {m} (still served in {e})" for m, e in served] + [f"environment {e}" for e in sorted(envs)]
        hint = "; ".join(f"gitops-tool retire {m} --env {e}" for m, e in served) or ""
        raise GitopsError(
            "refusing to drop " + ", ".join(what) + " from the tree; nothing written",
            hint=(f"retire first ({hint}), or " if hint else "") + "pass --prune to drop it anyway "
                 "(an environment's Argo CD Application prunes its workloads when it goes)")
    extra = []
    for (model, _), env_dir in served.items():
        for path, text in plan_retire(env_dir, model).items():
            rel, old = path.relative_to(root).as_posix(), _read(path)
            extra.append(FileAction(rel, "delete" if text is None else "update", old, text))
    return extra


def apply_actions(root: Path, actions: list[FileAction]) -> None:
    for act in actions:
        if not act.changes:  # identical or kept: nothing to write (and no Path to build)
            continue
        target = root / act.path
        if act.action in ("create", "update"):
            _atomic_write(target, act.new or "")
        elif act.action == "delete":
            target.unlink()
            _prune_empty_dirs(target.parent, root)


def _atomic_write(target: Path, text: str) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; generated files are ordinary files
        os.replace(tmp, target)
    except OSError as exc:
        raise GitopsError(f"{target}: cannot write: {exc.strerror or exc}") from None


def _prune_empty_dirs(folder: Path, root: Path) -> None:
    while folder != root and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent
