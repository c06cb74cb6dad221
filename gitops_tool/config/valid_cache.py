"""Remember which gitops.yaml contents passed the JSON Schema, so a CLI run need not import jsonschema.

Every command loads gitops.yaml and checks it against the packaged schema: ~50 ms of importing
jsonschema and ~30 ms of checking, for a file that rarely changes. The key is the hash of the
schema text and of the parsed document as JSON (what the validator sees: values, types, order);
only a pass is recorded, as an empty file named by the key in <cache dir>/config-valid/ (see
kustomize.render_cache.cache_dir). A document that does not serialise as JSON, a missing entry or
GITOPS_TOOL_CACHE=off means checking as before; a failed write is ignored.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any


def _entry(plain: Any, schema_text: str) -> Path | None:
    from gitops_tool.kustomize.render_cache import cache_dir, enabled

    if not enabled():
        return None
    try:
        body = json.dumps(plain, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError):
        return None
    digest = hashlib.sha256(f"{schema_text}\0{body}".encode("utf-8", "surrogatepass")).hexdigest()
    return cache_dir().parent / "config-valid" / digest


def known_valid(plain: Any, schema_text: str) -> bool:
    entry = _entry(plain, schema_text)
    return entry is not None and entry.is_file()


def record_valid(plain: Any, schema_text: str) -> None:
    entry = _entry(plain, schema_text)
    if entry is None:
        return
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        tmp = entry.with_name(f".{entry.name}.{os.getpid()}.tmp")
        tmp.touch()
        os.replace(tmp, entry)
    except OSError:
        pass
