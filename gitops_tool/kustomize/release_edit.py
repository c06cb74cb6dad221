"""Edit an environment's release component: the round trip a promotion, rollback or canary writes.

ruamel.yaml round trips keep comments, key order, quoting and blank lines, so a re-promotion changes
only the lines whose values change (the image tag or digest and the tool's annotations). What the
files mean when read back is kustomize/release.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitops_tool.errors import GitopsError
from gitops_tool.kustomize.release import (
    ARTIFACT_ANNOTATION, CHAIN_ANNOTATION, DEPLOYED_AT_ANNOTATION, HOLD_ANNOTATION, VERSION_ANNOTATION, Deployed,
    ImageRef, _dump, _list, _load, _str, chain_text, patch_path, release_path, utc_now_text,
)


def _styled(old: Any, new: str) -> Any:
    """Keep the quoting style the file already used for this value."""
    from ruamel.yaml.scalarstring import DoubleQuotedScalarString, SingleQuotedScalarString

    for style in (DoubleQuotedScalarString, SingleQuotedScalarString):
        if isinstance(old, style):
            return style(new)
    if isinstance(old, str) and not isinstance(new, str):
        return str(new)
    return DoubleQuotedScalarString(new) if _needs_quotes(new) and old is None else new


def _needs_quotes(value: str) -> bool:
    return bool(re.fullmatch(r"[0-9.eE+-]+|true|false|null|yes|no|on|off", value, re.I))


@dataclass(frozen=True)
class ReleaseEdit:
    model: str
    version: str
    image: ImageRef | None = None       # image mode
    storage_uri: str | None = None      # storage mode
    hold: str | None = None             # set a hold (rollback); None keeps it as it is
    clear_hold: bool = False            # remove the hold (release, forced promote)
    before: tuple[Deployed, ...] | None = None  # the new chain; None keeps it as it is
    deployed_at: str | None = field(default_factory=utc_now_text)  # stamped when the version changes
    canary_percent: int | None = None   # set spec.predictor.canaryTrafficPercent; 0 removes it
    annotations: tuple[tuple[str, str | None], ...] = ()  # more annotations to set (None removes)


def plan_release_edit(env_dir: Path, edit: ReleaseEdit) -> dict[Path, str]:
    """New text of every release file the edit changes (unchanged files are left out)."""
    path = release_path(env_dir)
    doc = _load(path)
    serving = env_dir.parent.parent / "base" / "serving" / edit.model
    if not (serving / "kustomization.yaml").is_file():
        # Promotions build on the remote's tip: a model added to gitops.yaml but not yet generated,
        # committed and pushed has no InferenceService there to release.
        raise GitopsError(f"base/serving/{edit.model}/ is missing, so {edit.model} cannot be released in "
                          f"{env_dir.name}; nothing committed",
                          hint="run `gitops-tool generate`, then commit and push its output")
    _ensure_entry(_list(doc, "resources", path), f"../../../base/serving/{edit.model}")
    _ensure_entry(_list(doc, "patches", path), {"path": f"{edit.model}.yaml"}, key="path")
    if edit.image is not None:
        _set_image(_list(doc, "images", path), edit.model, edit.image)
    changes = {}
    new_text = _dump(doc)
    if new_text != path.read_text(encoding="utf-8"):
        changes[path] = new_text
    ppath = patch_path(env_dir, edit.model)
    old_patch = ppath.read_text(encoding="utf-8") if ppath.exists() else None
    patch = _load(ppath) if old_patch is not None else _new_patch(edit.model)
    _edit_patch(patch, edit)
    patch_text = _dump(patch)
    if patch_text != old_patch:
        changes[ppath] = patch_text
    return changes


def _ensure_entry(seq: Any, value: Any, key: str | None = None) -> None:
    present = [item.get(key) if key and isinstance(item, dict) else item for item in seq]
    if (value[key] if key else value) not in present:
        seq.append(value)


def _set_image(images: Any, model: str, ref: ImageRef) -> None:
    from ruamel.yaml.comments import CommentedMap

    entry = next((i for i in images if isinstance(i, dict) and i.get("name") == model), None)
    if entry is None:
        entry = CommentedMap([("name", model)])
        images.append(entry)
    if entry.get("newName") != ref.name:
        entry["newName"] = ref.name
    if ref.digest:
        entry.pop("newTag", None)
        entry["digest"] = _styled(entry.get("digest"), ref.digest)
    else:
        entry.pop("digest", None)
        entry["newTag"] = _styled(entry.get("newTag"), ref.tag or "")


def _new_patch(model: str) -> Any:
    from ruamel.yaml.comments import CommentedMap

    return CommentedMap([
        ("apiVersion", "serving.kserve.io/v1beta1"),
        ("kind", "InferenceService"),
        ("metadata", CommentedMap([("name", model), ("annotations", CommentedMap())])),
    ])


def _edit_patch(patch: Any, edit: ReleaseEdit) -> None:
    from ruamel.yaml.comments import CommentedMap

    meta = patch.setdefault("metadata", CommentedMap())
    annotations = meta.get("annotations")
    if annotations is None:
        annotations = meta["annotations"] = CommentedMap()
    if edit.deployed_at and _str(annotations.get(VERSION_ANNOTATION)) != edit.version:
        annotations[DEPLOYED_AT_ANNOTATION] = edit.deployed_at
    annotations[VERSION_ANNOTATION] = _styled(annotations.get(VERSION_ANNOTATION), edit.version)
    if edit.hold is not None:
        annotations[HOLD_ANNOTATION] = _styled(annotations.get(HOLD_ANNOTATION), edit.hold)
    elif edit.clear_hold:
        annotations.pop(HOLD_ANNOTATION, None)
    artifact = str(edit.image) if edit.image is not None else edit.storage_uri
    if artifact:
        annotations[ARTIFACT_ANNOTATION] = _styled(annotations.get(ARTIFACT_ANNOTATION), artifact)
    if edit.before is not None:
        if edit.before:
            annotations[CHAIN_ANNOTATION] = chain_text(edit.before)
        else:
            annotations.pop(CHAIN_ANNOTATION, None)
    for key, value in edit.annotations:
        if value is None:
            annotations.pop(key, None)
        else:
            annotations[key] = value
    if edit.canary_percent is not None:
        _set_canary(patch, edit.canary_percent)
    if edit.storage_uri is not None:
        spec = patch.setdefault("spec", CommentedMap())
        predictor = spec.setdefault("predictor", CommentedMap())
        model = predictor.setdefault("model", CommentedMap())
        model["storageUri"] = _styled(model.get("storageUri"), edit.storage_uri)


def _set_canary(patch: Any, percent: int) -> None:
    """KServe Serverless: the predictor's share for the newest revision; the rest stays on the previous one."""
    from ruamel.yaml.comments import CommentedMap

    if percent:
        predictor = patch.setdefault("spec", CommentedMap()).setdefault("predictor", CommentedMap())
        predictor["canaryTrafficPercent"] = percent
        return
    predictor = (patch.get("spec") or {}).get("predictor")
    if isinstance(predictor, dict):
        predictor.pop("canaryTrafficPercent", None)
        if not predictor:
            patch["spec"].pop("predictor")
    if isinstance(patch.get("spec"), dict) and not patch["spec"]:
        patch.pop("spec")
