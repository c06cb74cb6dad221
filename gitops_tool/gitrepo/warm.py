"""Warm clones for the webhook receiver: fetch + hard reset to the remote's tip instead of a clone per job.

A warm clone is handed out only when, after the refresh, it verifiably is the remote's tip: HEAD is
the commit just fetched, `git status --porcelain --ignored` prints nothing, and every object of that
commit is present. Any doubt (a failed fetch, reset or check, a stray file, a broken index, a missing
object, or a job that failed in it) throws the clone away and a fresh shallow clone takes its place.
The pool holds one clone per job running at once, so each worker thread has its own.

Jobs of different models run at once, so their pushes to the one branch would race: the engine
survives a refused push (fetch, decide again on the new tip, render again, push), but the burst bench
measured every second job rendering twice, and without an order one job lost 16 races in a row.
So the clones of a pool take turns to commit: a job takes the pool's turn when the engine is about
to build its commit (`catch_up`, called by commit_and_push), moves to the newest tip if another job
pushed meanwhile (the engine then decides again there), and keeps the turn until its push has landed
or the job ends. Refreshing, resolving and deciding (all a job that ends "already promoted" does)
run in parallel; the render and the push run one job at a time. Other writers still cause retries.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from gitops_tool.errors import GitopsError

from ._run import clean_stderr
from .pushout import PushRejected
from .repo import GitRepo

REMOTE = "origin"
MAX_USES = 200  # then a fresh clone: bounds the objects a long-lived clone accumulates


@dataclass
class PoolStats:
    fresh: int = 0            # jobs that started on a fresh clone
    warm: int = 0             # jobs that started on a refreshed warm clone
    discarded: list[str] = field(default_factory=list)  # why a warm clone was thrown away


class ClonePool:
    """Warm clones of ``url``/``branch`` under one private directory; thread-safe."""

    def __init__(self, url: str, branch: str = "main", root: Path | None = None, *, max_uses: int = MAX_USES,
                 on_discard: Callable[[Path, str], None] | None = None):
        self.url, self.branch, self.max_uses = url, branch, max_uses
        self.root = root or Path(tempfile.mkdtemp(prefix="gitops-tool-warm-"))
        self.stats = PoolStats()
        self._on_discard = on_discard
        self._idle: list[tuple[Path, int]] = []  # (clone, jobs run in it)
        self._lock = threading.Lock()
        self._turn = threading.Lock()  # held by the job building and pushing its commit
        self.pushes = 0                # commits this pool's jobs pushed (changed under the turn only)
        self._serial = 0

    @contextmanager
    def checkout(self) -> Iterator[GitRepo]:
        """A clone at the remote's tip, clean, for one job; back to the pool only if the job succeeded."""
        pushes_before = self.pushes  # read before the fetch: a push after it makes catch_up fetch again
        path, uses = self._take()
        repo = self._refreshed(path) if path is not None else None
        if repo is None:
            path, uses = self._new_path(), 0
            repo = TurnTakingRepo.clone(self.url, self.branch, path, depth=1)
            with self._lock:
                self.stats.fresh += 1
        else:
            with self._lock:
                self.stats.warm += 1
        repo.turn, repo.pool, repo.pushes_seen = self._turn, self, pushes_before
        try:
            yield repo
        except BaseException as exc:
            repo.end_turn()
            self._discard(path, f"a job failed in it: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}")
            raise
        repo.end_turn()
        if uses + 1 >= self.max_uses:
            self._discard(path, f"used {uses + 1} times")
        else:
            with self._lock:
                self._idle.append((path, uses + 1))

    def close(self) -> None:
        with self._lock:
            self._idle.clear()
        shutil.rmtree(self.root, ignore_errors=True)

    def _take(self) -> tuple[Path | None, int]:
        with self._lock:
            self.root.mkdir(parents=True, exist_ok=True)  # (again, if something swept it away)
            os.utime(self.root)  # a fresh mtime keeps another receiver's stale-clone sweep away
            return self._idle.pop() if self._idle else (None, 0)

    def _new_path(self) -> Path:
        with self._lock:
            self._serial += 1
            return self.root / f"clone-{self._serial}"

    def _refreshed(self, path: Path) -> TurnTakingRepo | None:
        try:
            repo = TurnTakingRepo.open(path)
            refresh(repo, REMOTE, self.branch)
            return repo
        except (GitopsError, OSError) as exc:
            self._discard(path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return None

    def _discard(self, path: Path, why: str) -> None:
        with self._lock:
            self.stats.discarded.append(why)
        shutil.rmtree(path, ignore_errors=True)
        if self._on_discard is not None:
            self._on_discard(path, why)


class TurnTakingRepo(GitRepo):
    """A pool's clone: builds and pushes its commit only while it holds the pool's turn."""

    turn: threading.Lock
    pool: ClonePool
    pushes_seen = 0  # the pool's push count when this clone was refreshed
    _holding = False

    def catch_up(self, remote: str, branch: str) -> None:
        """Wait for the turn, then move to the tip if another job of the pool pushed since the refresh.

        Another writer's push is not looked for here (that would cost a fetch per job): the push is
        refused then, and commit_and_push fetches and decides again."""
        self._take_turn()
        if self.pool.pushes == self.pushes_seen:
            return
        self.fetch(remote, branch)
        tracking = f"refs/remotes/{remote}/{branch}"
        revs = self._check(self._git("rev-parse", "HEAD", tracking), "rev-parse").split()
        if revs[0] != revs[1]:
            self.reset_to(tracking, mode="--keep")  # the tree is clean here: nothing is edited yet
            self.caught_up = True

    def _take_turn(self) -> None:
        if not self._holding:
            self.turn.acquire()
            self._holding = True

    def push(self, remote: str, branch: str, refspec: str | None = None) -> bool:
        self._take_turn()
        try:
            pushed = super().push(remote, branch, refspec)
        except PushRejected:
            raise  # keep the turn: commit_and_push fetches, decides again and pushes before anyone else here
        except BaseException:
            self.end_turn()
            raise
        if pushed:
            self.pool.pushes += 1
        self.end_turn()
        return pushed

    def end_turn(self) -> None:
        if self._holding:
            self._holding = False
            self.turn.release()


def refresh(repo: GitRepo, remote: str, branch: str) -> str:
    """Fetch ``branch``, hard-reset to it and verify; the tip's sha. GitopsError on any doubt."""
    repo.fetch(remote, branch)
    tracking = f"refs/remotes/{remote}/{branch}"
    repo.reset_to(tracking, mode="--hard")
    revs = repo._check(repo._git("rev-parse", "HEAD", tracking), "rev-parse").split()
    if len(revs) != 2 or revs[0] != revs[1]:
        raise GitopsError(f"{repo.root}: HEAD {revs[:1]} is not the fetched tip {revs[1:]}")
    dirty = repo._check(repo._git("status", "--porcelain=v1", "--ignored", "--untracked-files=all"), "status")
    if dirty.strip():
        raise GitopsError(f"{repo.root}: not clean after the reset: {dirty.splitlines()[0].strip()}")
    # Every object of the tip must be there: a warm clone whose object store lost a file would
    # otherwise pass the checks above (the index still matches) and fail, or worse, later.
    objects = repo._git("rev-list", "--objects", "--no-walk", "--missing=error", revs[0])
    if not objects.ok:
        raise GitopsError(f"{repo.root}: objects of {revs[0][:12]} missing: {clean_stderr(objects.err)}")
    return revs[0]
