"""Private worktrees: where a promotion builds its commit on the remote's tip, away from the user's.

The worktree shares the user's object store (no clone, no copy), has a detached HEAD (it holds no
branch), and is removed afterwards; a SIGKILLed run leaves a directory that the next run's sweep and
`git worktree prune` clean up. Nothing here moves the user's branch or touches their working tree,
except `fast_forward`, which only ever runs `git merge --ff-only` on the branch the user has checked
out (git itself refuses when a local change would be overwritten).
"""

from __future__ import annotations

from pathlib import Path

from ._run import clean_stderr
from .repo import GitRepo


def add_worktree(repo: GitRepo, path: Path, rev: str) -> GitRepo:
    repo._git("worktree", "prune")  # forget worktrees whose directory a killed run left to the sweep
    res = repo._git("worktree", "add", "--quiet", "--detach", str(path), rev)
    repo._check(res, f"worktree add {path} {rev}")
    return GitRepo.open(path)


def remove_worktree(repo: GitRepo, path: Path) -> None:
    repo._git("worktree", "remove", "--force", str(path))


def update_branch(repo: GitRepo, branch: str, sha: str) -> None:
    """Point local branch ``branch`` at ``sha`` (created or replaced); never the checked-out one."""
    repo._check(repo._git("update-ref", f"refs/heads/{branch}", sha), f"update-ref {branch}")


def current_branch_or_none(repo: GitRepo) -> str | None:
    res = repo._git("symbolic-ref", "-q", "--short", "HEAD")
    return res.out.strip() if res.ok else None


def fast_forward(repo: GitRepo, branch: str, rev: str) -> str:
    """Fast-forward the user's checkout to ``rev`` when that is safe; says what happened."""
    on = current_branch_or_none(repo)
    if on != branch:
        return f"your checkout is on {on or 'a detached HEAD'}, not {branch}: left as it is"
    head = repo._git("rev-parse", "-q", "--verify", "HEAD")
    if head.ok and head.out.strip() == repo._git("rev-parse", rev).out.strip():
        return f"your {branch} is up to date"
    if head.ok and not repo._git("merge-base", "--is-ancestor", "HEAD", rev).ok:
        return f"your {branch} has commits the remote does not: left as it is (pull or rebase yourself)"
    res = repo._git("merge", "--ff-only", "--quiet", rev)
    if not res.ok:
        first = clean_stderr(res.err).splitlines()[0] if res.err.strip() else "git merge --ff-only failed"
        return f"your {branch} was not fast-forwarded ({first}): left as it is"
    return f"your {branch} was fast-forwarded to the remote"
