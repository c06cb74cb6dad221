"""Where a promotion runs: the current checkout, or a fresh shallow clone (the webhook receiver's case)."""

from __future__ import annotations

import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from gitops_tool.config import CONFIG_FILE, Config, find_config, load_config
from gitops_tool.errors import GitopsError
from gitops_tool.gitrepo import GitRepo


@dataclass(frozen=True)
class Workspace:
    cfg: Config
    repo: GitRepo
    remote: str
    branch: str
    cloned: bool


CLONE_PREFIX = "gitops-tool-"


def sweep_stale_clones(max_age: float = 3600.0) -> int:
    """Remove temporary clones a killed promotion left behind (SIGKILL skips the cleanup)."""
    import time

    removed = 0
    for path in Path(tempfile.gettempdir()).glob(f"{CLONE_PREFIX}*"):
        try:
            if path.is_dir() and time.time() - path.stat().st_mtime > max_age:
                shutil.rmtree(path, ignore_errors=True)
                removed += 1
        except OSError:
            continue
    return removed


@contextmanager
def open_workspace(config_path: Path | None = None, repo_url: str | None = None,
                   branch: str | None = None) -> Iterator[Workspace]:
    if not repo_url:
        cfg = load_config(config_path or find_config())
        repo = GitRepo.open(cfg.root)
        if repo.root.resolve() != cfg.root.resolve():
            raise GitopsError(f"{cfg.source}: gitops.yaml must sit at the top of its Git repository ({repo.root})")
        yield Workspace(cfg, repo, cfg.remote, cfg.branch, cloned=False)
        return
    tmp = Path(tempfile.mkdtemp(prefix=CLONE_PREFIX))
    try:
        repo = GitRepo.clone(repo_url, branch or "main", tmp / "repo", depth=1)
        config = tmp / "repo" / CONFIG_FILE
        if not config.is_file():
            raise GitopsError(f"{repo_url}: no {CONFIG_FILE} at the top of branch {branch or 'main'}")
        cfg = load_config(config)
        yield Workspace(cfg, repo, "origin", branch or "main", cloned=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
