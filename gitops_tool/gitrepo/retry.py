"""commit_and_push: the apply -> commit -> push loop that survives concurrent writers."""

from __future__ import annotations

import random
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from gitops_tool.errors import GitopsError

from .pushout import PushRejected
from .repo import GitRepo


@dataclass
class CommitPlan:
    """What ``apply`` changed: the files to commit and the message parts."""

    paths: Sequence[Path | str]
    subject: str
    body: str = ""
    trailers: dict[str, str] = field(default_factory=dict)
    author: str | None = None


@dataclass(frozen=True)
class PushResult:
    commit: str | None  # sha that landed (or was committed locally with push=False)
    pushed: bool
    attempts: int
    skipped: str | None = None  # reason when nothing was committed


def _delay(attempt: int, base: float, factor: float, cap: float) -> float:
    """Exponential backoff with full jitter: writers that collided once spread
    over the whole window instead of colliding again in lockstep."""
    return random.uniform(0, min(cap, base * factor ** (attempt - 1)))


def commit_and_push(
    repo: GitRepo,
    *,
    remote: str,
    branch: str,
    apply: Callable[[GitRepo], CommitPlan | None],
    attempts: int = 6,
    backoff: float = 0.2,
    backoff_factor: float = 1.5,
    backoff_cap: float = 5.0,
    push: bool = True,
) -> PushResult:
    """Apply an edit on HEAD, commit it and push it to ``remote``/``branch``.

    On a non-fast-forward rejection: fetch, move to the remote tip, re-run
    ``apply`` there (it may now find nothing to do) and try again, at most
    ``attempts`` times. On any failure the branch and the touched files go back
    to where they were before the call.

    Precondition: tracked files are clean (checked). That is what makes the
    resets below safe: a reset can then only discard our own edits. Resets use
    ``--keep``, which refuses to overwrite untracked files (``--hard`` would
    silently clobber an untracked file that the remote started tracking)."""
    if attempts < 1:
        raise ValueError(f"attempts must be >= 1, got {attempts}")
    _ensure_space(repo.root)
    if push:
        repo.catch_up(remote, branch)
    repo.ensure_clean(include_untracked=False)
    orig = repo.head_sha()
    untracked_before = repo.untracked()
    touched: list[Path | str] = []
    try:
        for attempt in range(1, attempts + 1):
            plan = apply(repo)
            if plan is None:
                return PushResult(None, False, attempt, "no change")
            touched.extend(plan.paths)
            sha = repo.commit(plan.paths, plan.subject, plan.body, plan.trailers, plan.author)
            if sha is None:
                return PushResult(None, False, attempt, "no change")
            if not push:
                return PushResult(sha, False, attempt)
            try:
                if not repo.push(remote, branch):
                    # Another writer made the byte-identical commit (same parent, tree,
                    # message, second): it is on the remote already, not by us.
                    return PushResult(None, False, attempt, "no change")
                return PushResult(sha, True, attempt)
            except PushRejected:
                if attempt == attempts:
                    raise GitopsError(
                        f"push to remote {remote!r} branch {branch!r} still rejected after "
                        f"{attempts} attempts: other writers keep moving the branch",
                        retryable=True,
                    ) from None
            time.sleep(_delay(attempt, backoff, backoff_factor, backoff_cap))
            repo.fetch(remote, branch)
            # Drops our unpushed commit; apply() runs again on the new tip.
            repo.reset_to(f"refs/remotes/{remote}/{branch}", mode="--keep")
        raise AssertionError("unreachable")  # pragma: no cover
    except BaseException as exc:
        try:
            _rollback(repo, orig, touched, untracked_before)
        except Exception as undo:  # noqa: BLE001 - never let the undo hide the original failure
            raise GitopsError(
                f"{exc}\n  and restoring {repo.root} failed too: {str(undo).splitlines()[0]}",
                hint="check `git status` there: free space or make it writable, then `git reset --hard`",
            ) from exc
        if isinstance(exc, GitopsError) and not (repr(remote) in str(exc) and repr(branch) in str(exc)):
            msg = f"promotion to remote {remote!r} branch {branch!r} failed: {exc.args[0]}"
            raise GitopsError(msg, retryable=exc.retryable, hint=exc.hint) from exc
        raise


MIN_FREE_BYTES = 1024 * 1024


def _ensure_space(root: Path) -> None:
    """Refuse up front on a nearly full disk: once git has filled it, not even the undo can run."""
    free = shutil.disk_usage(root).free
    if free < MIN_FREE_BYTES:
        raise GitopsError(f"{root}: No space left on device: {free // 1024} KiB free; committing and undoing "
                          f"need at least {MIN_FREE_BYTES // 1024} KiB; nothing changed")


def _rollback(repo: GitRepo, orig: str, touched: list[Path | str], untracked_before: set[str]) -> None:
    """Branch back to ``orig``, touched paths back to it, files apply() created removed.

    `reset --hard orig` is safe here: tracked files were clean at the start, so
    it only discards our edits and the remote commits we reset onto. Untracked
    files are removed only if they are new and under a touched path."""
    if touched:  # new files first (staged or not): that frees space a full disk needs for index.lock
        known = repo.tracked_at(orig, touched) | untracked_before
        for rel in sorted(repo.files_under(touched) - known):
            (repo.root / rel).unlink(missing_ok=True)
    repo.reset_to(orig, mode="--hard")
