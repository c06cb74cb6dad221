"""Remember the parsed form of a gitops.yaml that loaded cleanly, so the next run skips ruamel.

ruamel's round-trip parser takes ~0.15 s of CPU for a gitops.yaml with 100 environments and 50
models, on every command. For a text that parsed, passed the v1 check and the JSON Schema, the
cache keeps what the loader derived from it: the plain document and the line of every node (for
error messages). The key hashes the text with the packaged schema, the ruamel version and this
package's loader code; the entry is a pickle in <cache dir>/config-parsed/ that is only read when
this user owns it and nobody else may write it (a pickle from elsewhere could run code). A
missing, unreadable or foreign entry, or GITOPS_TOOL_CACHE=off, means parsing as before.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import stat
from pathlib import Path
from typing import Any, Callable

FORMAT = 1


def _entry(text: str, schema_text: str) -> Path | None:
    from gitops_tool.kustomize.render_cache import cache_dir, enabled

    if not enabled():
        return None
    here = Path(__file__).resolve().parent
    code = " ".join(f"{p.name}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in sorted(here.glob("*.py")))
    digest = hashlib.sha256(f"{FORMAT}\0{ruamel_identity()}\0{code}\0{schema_text}\0{text}".encode(
        "utf-8", "surrogatepass")).hexdigest()
    return cache_dir().parent / "config-parsed" / f"{digest}.pickle"


def ruamel_identity() -> str:
    """The installed ruamel.yaml, named without importing it (that alone takes ~60 ms)."""
    import importlib.util

    spec = importlib.util.find_spec("ruamel.yaml")
    if spec is None or not spec.origin:
        return "ruamel absent"
    st = Path(spec.origin).stat()
    return f"ruamel {spec.origin} {st.st_size} {st.st_mtime_ns}"


def lookup(text: str, schema_text: str) -> tuple[Any, Callable[[list], int | None]] | None:
    entry = _entry(text, schema_text)
    if entry is None:
        return None
    try:
        with open(entry, "rb") as handle:
            st = os.fstat(handle.fileno())
            if st.st_uid != os.getuid() or st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
                return None
            plain, lines = pickle.load(handle)
    except Exception:  # noqa: BLE001 - missing, truncated or not ours: parse as before
        return None
    return plain, lambda path: line_from(lines, path)


def line_from(lines: dict, path: list) -> int | None:
    """The same answer as loader._line_of: the deepest recorded node on ``path``."""
    line = None
    for depth in range(1, len(path) + 1):
        key = tuple(path[:depth])
        if key not in lines:
            break
        line = lines[key]
    return line


def all_lines(doc: Any) -> dict[tuple, int]:
    """Every node's line, as loader._line_of finds them (key lines in maps, item lines in lists)."""
    lines: dict[tuple, int] = {}

    def walk(node: Any, prefix: tuple) -> None:
        try:
            if isinstance(node, dict):
                for key, value in node.items():
                    lines[prefix + (key,)] = node.lc.key(key)[0] + 1
                    walk(value, prefix + (key,))
            elif isinstance(node, list):
                for index, value in enumerate(node):
                    lines[prefix + (index,)] = node.lc.item(index)[0] + 1
                    walk(value, prefix + (index,))
        except (AttributeError, KeyError, IndexError, TypeError):
            return

    walk(doc, ())
    return lines


def snapshot(plain: Any, doc: Any) -> bytes | None:
    """The entry's content, taken before anything builds on (and might change) ``plain``."""
    try:
        return pickle.dumps((plain, all_lines(doc)), protocol=pickle.HIGHEST_PROTOCOL)
    except Exception:  # noqa: BLE001 - something unpicklable: no entry
        return None


def store(text: str, schema_text: str, data: bytes | None) -> None:
    entry = _entry(text, schema_text) if data is not None else None
    if entry is None:
        return
    from gitops_tool.cache_files import write_entry

    write_entry(entry, data, private=True)  # no space, read-only: the next run parses again
