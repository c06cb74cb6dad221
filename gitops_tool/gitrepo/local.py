"""Local "origin" setup for tests and the demo: a bare repo on disk."""

from __future__ import annotations

from pathlib import Path

from gitops_tool.errors import GitopsError

from ._run import GitCmd, clean_stderr, run
from .repo import GitRepo


def init_bare_remote(path: Path, *, initial_branch: str = "main") -> Path:
    """Create a bare repository at ``path`` to act as a remote; returns its path."""
    res = run(GitCmd(), "init", "--quiet", "--bare", f"--initial-branch={initial_branch}", "--", str(path))
    if not res.ok:
        raise GitopsError(f"cannot create bare repository {path}: {clean_stderr(res.err)}")
    return Path(path).resolve()


def push_branch(repo: GitRepo, remote: str, branch: str) -> None:
    """Push HEAD to ``remote``/``branch`` and make it the upstream of the current branch."""
    repo.push(remote, branch)
    local = repo.current_branch()
    res = repo._git("branch", f"--set-upstream-to={remote}/{branch}", local)
    if not res.ok:
        raise GitopsError(f"cannot set upstream of {local!r} to {remote}/{branch} in {repo.root}: "
                          f"{clean_stderr(res.err)}")
