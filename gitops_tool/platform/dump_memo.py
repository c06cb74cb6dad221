"""Skip re-dumping generated files whose documents did not change since the last `generate`.

Dumping with ruamel is ~80% of a no-op `generate` (2 s at 100 environments x 50 models). For each
generated path the memo keeps the hash of the documents that went into the dump (a pickle of
plain dicts, lists and scalars: it captures values, types, key order and shared references, all
that the dump depends on) and the hash of the text ruamel produced. When the documents hash the
same and the file on disk hashes the same as that text, the file on disk *is* the dump, byte for
byte, and is returned instead. Anything else (a new or changed document, a hand-edited file, a
corrupt or missing memo, another tool or ruamel version) dumps as before. The memo file lives in
the cache dir (see kustomize.render_cache.cache_dir), generate/<hash of the repository path>.json;
failing to write it (disk full, read-only) only costs the next run its speed.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
from pathlib import Path

FORMAT = 1


def _fingerprint() -> str:
    from gitops_tool.config.parse_cache import ruamel_identity

    from gitops_tool import __version__

    here = Path(__file__).resolve().parent.parent / "yamlio.py"
    st = here.stat()
    return f"{FORMAT} {__version__} {ruamel_identity()} yamlio {st.st_size} {st.st_mtime_ns}"


class FromDisk(str):
    """Text just read from the file it will be compared with: the writer knows it is identical."""


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class DumpMemo:
    def __init__(self, root: Path):
        from gitops_tool.kustomize.render_cache import cache_dir, enabled

        self.root = Path(root)
        self._root = str(self.root)
        self.file = cache_dir().parent / "generate" / f"{_sha(str(self.root.resolve()).encode())[:32]}.json"
        self.fingerprint = _fingerprint()
        self.entries: dict[str, list[str]] = {}
        self.fresh: dict[str, list[str]] = {}
        self.hits = 0
        self.active = enabled()
        if self.active:
            self.entries = self._load()

    def _load(self) -> dict[str, list[str]]:
        try:
            data = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError, UnicodeDecodeError):
            return {}
        if not isinstance(data, dict) or data.get("fingerprint") != self.fingerprint:
            return {}
        entries = data.get("entries")
        return entries if isinstance(entries, dict) else {}

    def dump(self, path: str, docs: list, dump, **kwargs) -> str:
        """``dump(docs, **kwargs)``, or the file on disk when it is exactly what that would return."""
        try:
            key = _sha(pickle.dumps((sorted(kwargs.items()), docs), protocol=5))
        except Exception:  # noqa: BLE001 - something unpicklable: no memo for it, dump as ever
            return dump(docs, **kwargs)
        entry = self.entries.get(path)
        if self.active and isinstance(entry, list) and len(entry) == 2 and entry[0] == key:
            try:
                with open(os.path.join(self._root, path), "rb") as handle:  # a str path: Path is slow
                    disk = handle.read()
            except OSError:
                disk = None
            if disk is not None and _sha(disk) == entry[1]:
                self.fresh[path] = entry
                self.hits += 1
                return FromDisk(disk.decode("utf-8"))
        text = dump(docs, **kwargs)
        self.fresh[path] = [key, _sha(text.encode("utf-8"))]
        return text

    def save(self) -> bool:
        if not self.active or self.fresh == self.entries:
            return False
        from gitops_tool.cache_files import write_entry

        text = json.dumps({"fingerprint": self.fingerprint, "entries": self.fresh})
        return write_entry(self.file, text.encode("utf-8"))
