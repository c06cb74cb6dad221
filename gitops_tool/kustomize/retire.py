"""Take a model out of an environment's release component: the inverse of its first promotion.

Removes the model's resource, patch and image entries from environments/<env>/release/
kustomization.yaml and deletes its patch file, so the environment renders without the model's
base/serving/<model>/ (which `generate --prune` may then delete).
"""

from __future__ import annotations

from pathlib import Path

from gitops_tool.kustomize.release import _dump, _list, _load, patch_path, release_path


def serving_ref(model: str) -> str:
    return f"../../../base/serving/{model}"


def references(env_dir: Path, model: str) -> bool:
    """True when the environment's release still serves ``model`` (any of its three entries)."""
    path = release_path(env_dir)
    if not path.is_file():
        return False
    doc = _load(path)
    return (serving_ref(model) in list(_list(doc, "resources", path))
            or any(isinstance(p, dict) and p.get("path") == f"{model}.yaml" for p in _list(doc, "patches", path))
            or any(isinstance(i, dict) and i.get("name") == model for i in _list(doc, "images", path))
            or patch_path(env_dir, model).exists())


def plan_retire(env_dir: Path, model: str) -> dict[Path, str | None]:
    """New text of each changed release file; None for a file to delete."""
    path = release_path(env_dir)
    doc = _load(path)
    for key, keep in (("resources", lambda e: e != serving_ref(model)),
                      ("patches", lambda e: not (isinstance(e, dict) and e.get("path") == f"{model}.yaml")),
                      ("images", lambda e: not (isinstance(e, dict) and e.get("name") == model))):
        seq = _list(doc, key, path)
        for i in reversed(range(len(seq))):
            if not keep(seq[i]):
                del seq[i]
        if not seq:
            seq.fa.set_flow_style()  # `resources: []`, as generate first wrote it
    changes: dict[Path, str | None] = {}
    text = _dump(doc)
    if text != path.read_text(encoding="utf-8"):
        changes[path] = text
    if patch_path(env_dir, model).exists():
        changes[patch_path(env_dir, model)] = None
    return changes


def apply_retire(env_dir: Path, model: str) -> list[Path]:
    changes = plan_retire(env_dir, model)
    for target, text in changes.items():
        if text is None:
            target.unlink()
        else:
            tmp = target.with_name(f".{target.name}.gitops-tool.tmp")
            tmp.write_text(text, encoding="utf-8")
            tmp.replace(target)
    return list(changes)
