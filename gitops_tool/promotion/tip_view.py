"""A read-only view of the remote's tip: only gitops.yaml and the release files, read from Git objects.

`status` reads the configuration and each environment's release state, nothing else. A private
worktree (promotion.workspace) checks out the whole tree, which at 100 environments is thousands of
files written and deleted per run; this view fetches like a promotion does, then copies just those
files out of the fetched commit (`git ls-tree` + one `git cat-file --batch`) into a temporary
folder laid out like the repository. The user's branch, HEAD and working tree are not read or moved.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from gitops_tool.config import Config, find_config, load_config
from gitops_tool.errors import GitopsError
from gitops_tool.gitrepo import GitRepo
from gitops_tool.promotion.workspace import CLONE_PREFIX, _fetch, _relocated


@dataclass(frozen=True)
class TipView:
    cfg: Config
    remote: str
    branch: str
    commit: str


@contextmanager
def open_tip_view(config_path: Path | None = None, branch: str | None = None) -> Iterator[TipView]:
    local = load_config(config_path or find_config())  # only for where to go: remote and branch
    user = GitRepo.open(local.root)
    if user.root.resolve() != local.root.resolve():
        raise GitopsError(f"{local.source}: gitops.yaml must sit at the top of its Git repository ({user.root})")
    remote, branch = local.remote, branch or local.branch
    _fetch(user, remote, branch)
    rev = f"refs/remotes/{remote}/{branch}"
    commit = user._check(user._git("rev-parse", "--verify", f"{rev}^{{commit}}"), f"rev-parse {rev}").strip()
    rel_config = Path(local.source).resolve().relative_to(user.root).as_posix()
    tmp = Path(tempfile.mkdtemp(prefix=CLONE_PREFIX))
    tree = tmp / "tree"
    try:
        _copy_out(user, commit, tree, rel_config)
        config = tree / rel_config
        if not config.is_file():
            raise GitopsError(f"remote {remote!r} branch {branch!r} has no {rel_config}")
        try:
            yield TipView(_tip_config(local, config), remote, branch, commit)
        except GitopsError as exc:
            raise _relocated(exc, tree, user.root, f"{remote}/{branch}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _tip_config(local: Config, config: Path) -> Config:
    """The tip's configuration; the local one re-rooted when the file is byte for byte the same
    (a 100-environment gitops.yaml takes ~0.15 s to parse and check, so not twice)."""
    import dataclasses

    if config.read_bytes() == Path(local.source).read_bytes():
        return dataclasses.replace(local, source=str(config), root=config.resolve().parent)
    return load_config(config)


def _wanted(path: str, rel_config: str) -> bool:
    parts = path.split("/")  # git paths are "/"-separated; a Path per entry costs 0.1 ms x 5,000
    return path == rel_config or (len(parts) == 4 and parts[0] == "environments" and parts[2] == "release")


def _copy_out(user: GitRepo, commit: str, tree: Path, rel_config: str) -> None:
    listing = user._check(user._git("ls-tree", "-r", "-z", "--full-tree", commit, "--", rel_config, "environments"),
                          f"ls-tree {commit}")
    blobs = []
    for line in filter(None, listing.split("\0")):
        meta, path = line.split("\t", 1)
        mode, kind, oid = meta.split()
        if kind == "blob" and mode != "120000" and _wanted(path, rel_config):
            blobs.append((oid, path))
    if not blobs:
        return
    proc = subprocess.run(["git", "-C", str(user.root), "cat-file", "--batch"], capture_output=True, timeout=120,
                          input="".join(f"{oid}\n" for oid, _ in blobs).encode(), check=False)
    if proc.returncode != 0:
        raise GitopsError(f"git cat-file failed in {user.root}: {proc.stderr.decode(errors='replace').strip()}")
    data, pos = proc.stdout, 0
    for oid, path in blobs:
        header_end = data.index(b"\n", pos)
        got, _, size = data[pos:header_end].decode().split()
        if got != oid:
            raise GitopsError(f"git cat-file in {user.root}: expected {oid}, got {got}")
        start = header_end + 1
        target = tree / path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data[start:start + int(size)])
        pos = start + int(size) + 1  # the content is followed by a newline
