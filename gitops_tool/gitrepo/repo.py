"""GitRepo: a thin wrapper over one working tree, built for promotion commits."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Sequence

from gitops_tool.errors import GitopsError

from ._run import NETWORK_TIMEOUT, GitCmd, Result, as_posix_rel, clean_stderr, redact, run
from .messages import LOG_FORMAT, CommitRecord, build_message, parse_log
from .pushout import check_push

FALLBACK_NAME = "gitops-tool"
FALLBACK_EMAIL = "gitops-tool@localhost"
_AUTHOR = re.compile(r"^[^<>]+ <[^<>]*>$")
_TRANSIENT = re.compile(
    r"could not resolve host|timed out|connection (reset|refused)|couldn't connect|failed to connect"
    r"|early eof|temporar|the remote end hung up|http 5\d\d|returned error: 5\d\d",
    re.I,
)

PathLike = Path | str


class GitRepo:
    def __init__(self, root: Path):
        self.root = Path(root).resolve()
        self._cmd = GitCmd(self.root)
        self._identity: list[str] | None = None

    # -- construction -------------------------------------------------------
    @classmethod
    def open(cls, path: Path) -> GitRepo:
        """Open the repository containing ``path`` (any subdirectory works)."""
        path = Path(path)
        if not path.exists():
            raise GitopsError(f"{path} is not inside a git repository")
        where = path if path.is_dir() else path.parent
        res = run(GitCmd(where), "rev-parse", "--is-bare-repository", "--is-inside-work-tree")
        if not res.ok:
            raise GitopsError(f"{path} is not inside a git repository")
        if res.out.split()[:1] == ["true"] or res.out.split()[1:2] != ["true"]:
            raise GitopsError(f"{path} is a bare git repository; a working tree is needed")
        top = run(GitCmd(where), "rev-parse", "--show-toplevel")
        if not top.ok or not top.out.strip():
            raise GitopsError(f"{path} is a bare git repository; a working tree is needed")
        return cls(Path(top.out.strip()))

    @classmethod
    def clone(cls, url: str, branch: str, dest: Path, *, depth: int | None = 1) -> GitRepo:
        """Clone one branch (shallow by default: the webhook only needs the tip)."""
        args = ["clone", "--quiet", "--single-branch", "--branch", branch]
        if depth is not None:
            args += ["--depth", str(depth), "--no-local"]  # --depth is ignored for local paths otherwise
        res = run(GitCmd(), *args, "--", url, str(dest), timeout=NETWORK_TIMEOUT)
        if not res.ok:
            raise GitopsError(
                f"cannot clone {redact(url)!r} branch {branch!r} into {dest}: {clean_stderr(res.err)}",
                retryable=bool(_TRANSIENT.search(res.err)),
            )
        return cls.open(dest)

    # -- plumbing -------------------------------------------------------------
    def _git(self, *args: str, timeout: float | None = None) -> Result:
        return run(self._cmd, *args, timeout=timeout)

    def _check(self, res: Result, what: str) -> str:
        if not res.ok:
            raise GitopsError(f"git {what} failed in {self.root}: {clean_stderr(res.err)}")
        return res.out

    def _rel(self, paths: Sequence[PathLike]) -> list[str]:
        return [as_posix_rel(self.root, p) for p in paths]

    def _has_head(self) -> bool:
        return self._git("rev-parse", "-q", "--verify", "HEAD").ok

    # -- state ----------------------------------------------------------------
    def head_sha(self) -> str:
        res = self._git("rev-parse", "-q", "--verify", "HEAD")
        if not res.ok:
            raise GitopsError(f"{self.root} has no commits yet (HEAD is unborn)")
        return res.out.strip()

    def unpushed(self, remote: str, branch: str) -> list[str]:
        """Shas on HEAD that the (last fetched) remote branch does not have, newest first."""
        res = self._git("rev-list", f"refs/remotes/{remote}/{branch}..HEAD")
        return res.out.split() if res.ok else []

    def current_branch(self) -> str:
        res = self._git("symbolic-ref", "-q", "--short", "HEAD")
        if not res.ok:
            raise GitopsError(f"{self.root} is on a detached HEAD, not a branch")
        return res.out.strip()

    def status(self, paths: Sequence[PathLike] | None = None, *, untracked: bool = True) -> list[tuple[str, str]]:
        """(XY, path) pairs from `git status --porcelain`, renames split into add+delete."""
        args = ["status", "--porcelain=v1", "-z", "--no-renames"]
        args.append("--untracked-files=all" if untracked else "--untracked-files=no")
        out = self._check(self._git(*args, "--", *self._rel(paths or [])), "status")
        return [(e[:2], e[3:]) for e in out.split("\0") if e]

    def ensure_clean(self, paths: Sequence[PathLike] | None = None, *, include_untracked: bool = True) -> None:
        dirty = self.status(paths, untracked=include_untracked)
        if dirty:
            shown = ", ".join(p for _, p in dirty[:10]) + (f" (+{len(dirty) - 10} more)" if len(dirty) > 10 else "")
            where = f" under {', '.join(self._rel(paths))}" if paths else ""
            raise GitopsError(
                f"{self.root} has uncommitted changes{where}: {shown}",
                hint="commit or stash them first (git stash -u)",
            )

    def files_under(self, paths: Sequence[PathLike]) -> set[str]:
        """Files under ``paths`` in the index or untracked (not ignored), repo-relative."""
        res = self._git("ls-files", "--cached", "--others", "--exclude-standard", "--", *self._rel(paths))
        return set(res.out.split("\n")) - {""} if res.ok else set()

    def tracked_at(self, rev: str, paths: Sequence[PathLike]) -> set[str]:
        """Repo-relative paths under ``paths`` that exist in commit ``rev``."""
        res = self._git("ls-tree", "-r", "--name-only", rev, "--", *self._rel(paths))
        return set(res.out.split("\n")) - {""} if res.ok else set()

    def untracked(self, paths: Sequence[PathLike] | None = None) -> set[str]:
        return {p for xy, p in self.status(paths) if xy == "??"}

    def restore(self, paths: Sequence[PathLike]) -> None:
        """Put ``paths`` back to HEAD: unstage, restore tracked files, delete new untracked ones.

        Ignored files are left alone (no `clean -x`): they are never ours."""
        rel = self._rel(paths)
        if not rel:
            return
        if self._has_head():
            self._check(self._git("reset", "-q", "HEAD", "--", *rel), "reset")
        else:
            self._check(self._git("rm", "-r", "-q", "--cached", "--ignore-unmatch", "--", *rel), "rm --cached")
        tracked = [p for p in self._check(self._git("ls-files", "-z", "--", *rel), "ls-files").split("\0") if p]
        if tracked:
            self._check(self._git("checkout", "-q", "--", *tracked), "checkout")
        self._check(self._git("clean", "-f", "-d", "-q", "--", *rel), "clean")

    # -- commits ----------------------------------------------------------------
    def _identity_args(self) -> list[str]:
        """`-c user.*` fallbacks when no identity is configured (never writes config).

        GIT_AUTHOR_*/GIT_COMMITTER_* env vars still win: git ranks them above config."""
        if self._identity is None:
            res = self._git("config", "--get-regexp", r"^user\.(name|email)$")
            have = {line.split(" ", 1)[0] for line in res.out.splitlines()} if res.ok else set()
            self._identity = []
            if "user.name" not in have:
                self._identity += ["-c", f"user.name={FALLBACK_NAME}"]
            if "user.email" not in have:
                self._identity += ["-c", f"user.email={FALLBACK_EMAIL}"]
        return self._identity

    def _stageable(self, rel: list[str]) -> list[str]:
        """Drop paths that neither exist nor are tracked: `git add` would fail on them."""
        missing = [p for p in rel if not os.path.lexists(self.root / p)]
        if not missing:
            return rel
        known = self._check(self._git("ls-files", "-z", "--", *missing), "ls-files")
        known_set = {k for k in known.split("\0") if k}
        keep = {p for p in missing if any(k == p or k.startswith(p.rstrip("/") + "/") for k in known_set)}
        return [p for p in rel if p not in missing or p in keep]

    def commit(
        self,
        paths: Sequence[PathLike],
        subject: str,
        body: str = "",
        trailers: dict[str, str] | None = None,
        author: str | None = None,
    ) -> str | None:
        """Commit exactly ``paths``; None (and no commit) when they did not change."""
        message = build_message(subject, body, trailers)
        rel = self._stageable(self._rel(paths))
        if not rel:
            return None
        self._check(self._git("add", "-A", "--", *rel), "add")
        if self._git("diff", "--cached", "--quiet", "--", *rel).ok:
            return None  # nothing staged for these paths: no empty commits
        args = [*self._identity_args(), "commit", "-q", "--no-edit", "--cleanup=whitespace", "-m", message]
        if author:
            if not _AUTHOR.match(author):
                raise GitopsError(f"commit author {author!r} must look like 'Name <email>'")
            args.append(f"--author={author}")
        # A pathspec commits only these paths even if other changes are staged.
        self._check(self._git(*args, "--", *rel), f"commit in {self.root}")
        return self.head_sha()

    def log_records(self, paths: Sequence[str] | None = None, max_count: int | None = None) -> list[CommitRecord]:
        """Commits newest first (only those touching ``paths`` if given), trailers parsed."""
        if not self._has_head():
            return []
        args = ["log", "--no-color", f"--format={LOG_FORMAT}"]
        if max_count is not None:
            args.append(f"--max-count={max_count}")
        out = self._check(self._git(*args, "HEAD", "--", *self._rel(paths or [])), "log")
        return parse_log(out)

    # -- remotes ----------------------------------------------------------------
    def add_remote(self, name: str, url: str) -> None:
        self._check(self._git("remote", "add", name, url), f"remote add {name}")

    def fetch(self, remote: str = "origin", branch: str = "main") -> None:
        refspec = f"+refs/heads/{branch}:refs/remotes/{remote}/{branch}"
        res = self._git("fetch", "--quiet", "--no-tags", remote, refspec, timeout=NETWORK_TIMEOUT)
        if not res.ok:
            raise GitopsError(
                f"cannot fetch branch {branch!r} from remote {redact(remote)!r}: {clean_stderr(res.err)}",
                retryable=bool(_TRANSIENT.search(res.err)),
            )

    caught_up = False  # catch_up moved HEAD: what was decided before must be decided again

    def catch_up(self, remote: str, branch: str) -> None:
        """Called by commit_and_push before the first edit of a commit that will be pushed: a no-op
        here. The receiver's pooled clones (gitrepo.warm) wait for their push turn there and move to
        the newest tip (setting ``caught_up``), so the edit is decided and built where it will land."""

    def reset_to(self, target: str, *, mode: str = "--hard") -> None:
        self._check(self._git("reset", "-q", mode, target), f"reset {mode} {target}")

    def reset_hard_to_remote(self, remote: str, branch: str) -> None:
        """Move the current branch and working tree to the fetched remote branch.

        Drops local commits and tracked edits; untracked files are kept."""
        self.reset_to(f"refs/remotes/{remote}/{branch}", mode="--hard")

    def push(self, remote: str, branch: str, refspec: str | None = None) -> bool:
        """Push HEAD (or ``refspec``); PushRejected when the branch moved, GitopsError otherwise.

        Returns False when the remote already had exactly this commit (up to date)."""
        spec = refspec or f"HEAD:refs/heads/{branch}"
        res = self._git("push", "--porcelain", remote, spec, timeout=NETWORK_TIMEOUT)
        return check_push(res, remote, branch)
