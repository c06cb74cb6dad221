"""Custom resources against the draft-07 JSON Schemas in `<dir>/<group>/<kind>_<version>.json`.

Like the API server, a null in a non-nullable field is dropped (or replaced by
its default) and missing defaulted fields are filled in before validating, so
required-and-defaulted fields do not fail spuriously.
"""

from __future__ import annotations

import copy
import json
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

from gitops_tool.validate.findings import format_path, schema_message

MAX_ERRORS_PER_DOC = 20
# The CRD schemas packaged with gitops-tool (SOURCES.json: upstream, version, licence); a schema folder wins.
PACKAGED = Path(__file__).resolve().parent / "schemas"
_lock = threading.Lock()


def schema_file(schema_dir: Path, api_version: str, kind: str) -> tuple[Path | None, list[str]]:
    """(schema file or None, versions that do have a schema for this group/kind)."""
    group, _, version = api_version.rpartition("/")
    folder = schema_dir / group
    if not group or not version or group.startswith(".") or not folder.is_dir():
        return None, []
    prefix = kind.lower() + "_"
    path = folder / f"{prefix}{version}.json"
    if path.is_file():
        return path, [version]
    others = sorted(p.name[len(prefix):-5] for p in folder.glob(f"{prefix}*.json"))
    return None, others


@lru_cache(maxsize=None)
def _validator(path: Path) -> Any:
    import jsonschema

    schema = json.loads(path.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema)


def validator_for(path: Path) -> Any:
    with _lock:  # a 1.7 MB schema should be parsed once, not once per thread
        return _validator(path)


def _nullable(schema: dict) -> bool:
    kind = schema.get("type")
    return (isinstance(kind, list) and "null" in kind) or any(
        isinstance(o, dict) and o.get("type") == "null" for o in schema.get("oneOf") or []
    )


def _sub_schema(schema: Any, key: str) -> Any:
    if not isinstance(schema, dict):
        return None
    props = schema.get("properties")
    if isinstance(props, dict) and key in props:
        return props[key]
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, dict) else None


def normalise(doc: Any, schema: Any) -> None:
    """Drop non-nullable nulls and apply defaults in place, as apiextensions-apiserver does."""
    if not isinstance(schema, dict):
        return
    if isinstance(doc, dict):
        for key in list(doc):
            sub = _sub_schema(schema, key)
            if doc[key] is None and isinstance(sub, dict) and not _nullable(sub):
                if "default" in sub:
                    doc[key] = copy.deepcopy(sub["default"])
                else:
                    del doc[key]
        for key, sub in (schema.get("properties") or {}).items():
            if key not in doc and isinstance(sub, dict) and "default" in sub:
                doc[key] = copy.deepcopy(sub["default"])
        for key, value in doc.items():
            normalise(value, _sub_schema(schema, key))
    elif isinstance(doc, list):
        for value in doc:
            normalise(value, schema.get("items"))


def check_crd(doc: dict, schema_dir: Path | None) -> list[tuple[str, str]] | None:
    """(path, message) errors; None when there is no schema for this kind (unchecked)."""
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return None
    path, others = schema_file(Path(schema_dir), api_version, kind) if schema_dir else (None, [])
    if path is None and not others:
        path, others = schema_file(PACKAGED, api_version, kind)
    if path is None and others:
        group = api_version.rpartition("/")[0]
        served = ", ".join(f"{group}/{v}" for v in others)
        return [("apiVersion", f"{api_version} is not a served version of {kind} (schemas exist for {served})")]
    if path is None:
        return None
    validator = validator_for(path)
    doc = copy.deepcopy(doc)
    normalise(doc, validator.schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: ([str(p) for p in e.absolute_path], e.message))
    return [(format_path(e.absolute_path), schema_message(e)) for e in errors[:MAX_ERRORS_PER_DOC]]
