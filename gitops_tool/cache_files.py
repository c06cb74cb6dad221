"""How every cache of the tool writes an entry: beside it, then renamed, so a reader never sees half.

The caches (kustomize/render_cache.py, platform/dump_memo.py, config/parse_cache.py) treat a failed
write (disk full, read-only home) as "no entry": the next run takes the full path again.
"""

from __future__ import annotations

import os
from pathlib import Path


def write_entry(path: Path, data: bytes, *, private: bool = False, durable: bool = False) -> bool:
    """Write ``data`` to ``path`` atomically; False (and no temp file left) when it could not be written.

    private: the folder 0700 and the file 0600 (an entry that is unpickled must be the user's own).
    durable: fsync before the rename, so a crash cannot leave a renamed but empty entry.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True, **({"mode": 0o700} if private else {}))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600 if private else 0o666)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
        return True
    except OSError:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        return False
