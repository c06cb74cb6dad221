"""Read and edit an environment's release component (environments/<env>/release/).

This is the only promotion-owned state. Edits are ruamel.yaml round trips: comments,
key order, quoting and blank lines survive, and a re-promotion changes only the
lines whose values change (the image tag or digest, and the version annotation).
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gitops_tool.errors import GitopsError
from gitops_tool.yamlio import round_trip

RELEASE_DIR = "release"
VERSION_ANNOTATION = "gitops-tool.io/model-version"
HOLD_ANNOTATION = "gitops-tool.io/hold"
# The environment's own chain: what was deployed before the current version, newest first (JSON).
# Rollback reads its target here and require_previous_stage its "ran in" facts, so neither depends
# on commit history (shallow clones, squash merges and reverts keep files, not history).
CHAIN_ANNOTATION = "gitops-tool.io/deployed-before"
CHAIN_LIMIT = 10
# The image (or storageUri) the tool itself wrote: a hand edit of only newTag shows as a mismatch.
ARTIFACT_ANNOTATION = "gitops-tool.io/artifact"
# When the current version became deployed here (UTC, ISO 8601), written by the commit that changed it:
# soak (promotion/soak.py) measures from it. The canary's stable version (promotion/canary.py) as JSON.
DEPLOYED_AT_ANNOTATION = "gitops-tool.io/deployed-at"
CANARY_FROM_ANNOTATION = "gitops-tool.io/canary-from"
_DIGEST = re.compile(r"^(?P<name>[^@]+)@(?P<digest>sha256:[a-f0-9]{64})$")
_TAGGED = re.compile(r"^(?P<name>.+?)(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?$")


@dataclass(frozen=True)
class ImageRef:
    name: str
    tag: str | None = None
    digest: str | None = None

    def __str__(self) -> str:
        return f"{self.name}@{self.digest}" if self.digest else f"{self.name}:{self.tag}"


def parse_image(text: str) -> ImageRef:
    """`repo:tag`, `repo@sha256:...` or `repo:tag@sha256:...` (the digest wins)."""
    text = text.strip()
    if match := _DIGEST.match(text):
        name = match["name"].rsplit(":", 1)[0] if _has_tag(match["name"]) else match["name"]
        return ImageRef(name, digest=match["digest"])
    match = _TAGGED.match(text)
    if not match or not match["tag"] or "/" in match["tag"] or not match["name"] or " " in text:
        raise GitopsError(f"image {text!r} is not pinned: give repository:tag or repository@sha256:<64 hex>")
    if match["tag"] == "latest":
        raise GitopsError(f"image {text!r} uses :latest; promotions pin a version tag or a digest")
    return ImageRef(match["name"], tag=match["tag"])


def _has_tag(name: str) -> bool:
    return ":" in name.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Deployed:
    version: str
    image: str | None = None
    storage_uri: str | None = None

    def to_json(self) -> dict[str, str]:
        out = {"version": self.version}
        if self.image:
            out["image"] = self.image
        if self.storage_uri:
            out["storageUri"] = self.storage_uri
        return out


@dataclass(frozen=True)
class ReleaseState:
    model: str
    version: str | None
    image: str | None
    storage_uri: str | None
    hold: str | None
    before: tuple[Deployed, ...] = ()   # deployed before the current version, newest first
    written: str | None = None          # the artifact the last gitops-tool edit wrote
    annotations: dict[str, str] = field(default_factory=dict)  # every annotation of the release patch
    canary_percent: int | None = None   # spec.predictor.canaryTrafficPercent: a canary is running

    def edited_by_hand(self) -> bool:
        """The image or storageUri differs from what the last promotion wrote (e.g. newTag edited)."""
        return self.written is not None and self.written != (self.image or self.storage_uri)

    @property
    def deployed(self) -> Deployed | None:
        return Deployed(self.version, self.image, self.storage_uri) if self.version else None

    def canary_from(self) -> Deployed | None:
        """The stable version a running canary shares traffic with (None when no canary runs)."""
        value = self.annotations.get(CANARY_FROM_ANNOTATION)
        if self.canary_percent is None or not value:
            return None
        return _chain(f"[{value}]", Path(CANARY_FROM_ANNOTATION))[0]

    def versions_run(self) -> set[str]:
        """Versions this environment's chain says ran here (the current one and those before it)."""
        if self.canary_percent is not None:  # a canary has not run here until it completes
            stable = self.canary_from()
            return {d.version for d in self.before} | ({stable.version} if stable else set())
        return {d.version for d in self.before} | ({self.version} if self.version else set())


def release_path(env_dir: Path) -> Path:
    return env_dir / RELEASE_DIR / "kustomization.yaml"


def patch_path(env_dir: Path, model: str) -> Path:
    return env_dir / RELEASE_DIR / f"{model}.yaml"


def _load(path: Path) -> Any:
    from ruamel.yaml.error import YAMLError

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GitopsError(f"{path}: missing; run `gitops-tool generate` to create it") from None
    try:
        doc = round_trip().load(text)
    except YAMLError as exc:
        raise GitopsError(f"{path}: corrupted YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(doc, dict):
        raise GitopsError(f"{path}: corrupted: expected a mapping at the top level")
    return doc


def _dump(doc: Any) -> str:
    out = io.StringIO()
    round_trip().dump(doc, out)
    return out.getvalue()


def _list(doc: Any, key: str, path: Path) -> Any:
    from ruamel.yaml.comments import CommentedSeq

    value = doc.get(key)
    if value is None:
        value = doc[key] = CommentedSeq()
    if not isinstance(value, list):
        raise GitopsError(f"{path}: corrupted: {key} must be a list")
    value.fa.set_block_style()
    return value


def read_release(env_dir: Path) -> dict[str, ReleaseState]:
    """What the environment serves, per model: version, image or storageUri, and any hold."""
    from gitops_tool.kustomize.release_read import load_release_file as load

    path = release_path(env_dir)
    doc = load(path)
    images = {str(i.get("name")): i for i in _read_list(doc, "images", path) if isinstance(i, dict)}
    states = {}
    for entry in _read_list(doc, "patches", path):
        model = Path(str(entry.get("path", ""))).stem if isinstance(entry, dict) else ""
        if not model:
            continue
        patch = load(patch_path(env_dir, model))
        annotations = (patch.get("metadata") or {}).get("annotations") or {}
        predictor = (patch.get("spec") or {}).get("predictor") or {}
        storage = (predictor.get("model") or {}).get("storageUri")
        image = images.get(model)
        states[model] = ReleaseState(
            model=model,
            version=_str(annotations.get(VERSION_ANNOTATION)),
            image=_image_text(image) if image else None,
            storage_uri=_str(storage),
            hold=_str(annotations.get(HOLD_ANNOTATION)),
            before=_chain(annotations.get(CHAIN_ANNOTATION), patch_path(env_dir, model)),
            written=_str(annotations.get(ARTIFACT_ANNOTATION)),
            annotations={str(k): str(v) for k, v in annotations.items()},
            canary_percent=_percent(predictor.get("canaryTrafficPercent"), patch_path(env_dir, model)),
        )
    return states


def _read_list(doc: dict, key: str, path: Path) -> list:
    value = doc.get(key)
    if value is not None and not isinstance(value, list):
        raise GitopsError(f"{path}: corrupted: {key} must be a list")
    return value or []


def _chain(value: Any, path: Path) -> tuple[Deployed, ...]:
    import json

    if value in (None, ""):
        return ()
    try:
        items = json.loads(str(value))
        return tuple(Deployed(str(i["version"]), i.get("image"), i.get("storageUri")) for i in items)
    except (ValueError, TypeError, KeyError) as exc:
        raise GitopsError(f"{path}: corrupted annotation {CHAIN_ANNOTATION}: {exc}") from None


def _percent(value: Any, path: Path) -> int | None:
    if value is None:
        return None
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)  # the fast reader (release_read.py) resolves no ints: every plain scalar is text
    if isinstance(value, bool) or not isinstance(value, int):
        raise GitopsError(f"{path}: corrupted spec.predictor.canaryTrafficPercent: {value!r} is not an integer")
    return value


def utc_now_text() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def chain_text(chain: tuple[Deployed, ...]) -> str:
    import json

    return json.dumps([d.to_json() for d in chain[:CHAIN_LIMIT]], separators=(",", ":"))


def _str(value: Any) -> str | None:
    return None if value is None else str(value)


def _image_text(entry: Any) -> str:
    name = entry.get("newName", entry.get("name"))
    return f"{name}@{entry['digest']}" if entry.get("digest") else f"{name}:{entry.get('newTag')}"
