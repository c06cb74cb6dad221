"""Where a promotion runs: always on the remote's tip, never in the user's checkout.

Checkout mode (the CLI in a clone of the GitOps repo): fetch the branch, then work in a private
worktree detached at the fetched tip (it shares the checkout's object store, so it costs no clone).
Clone mode (`--repo-url`): a fresh shallow clone; the webhook receiver passes a pool of warm clones
instead (gitrepo.warm: fetch + hard reset to the tip, verified, else a fresh clone). Either way the user's branch,
HEAD and working tree are never read as state and never moved; afterwards the checkout is
fast-forwarded only when git can do that without touching a local change (see gitrepo.private).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from gitops_tool.config import CONFIG_FILE, Config, find_config, load_config
from gitops_tool.errors import GitopsError
from gitops_tool.gitrepo import GitRepo
from gitops_tool.gitrepo import private
from gitops_tool.gitrepo._run import redact

if TYPE_CHECKING:
    from gitops_tool.gitrepo.warm import ClonePool

CLONE_PREFIX = "gitops-tool-"
PENDING_PREFIX = "gitops-tool/unpushed"


@dataclass(frozen=True)
class Workspace:
    cfg: Config
    repo: GitRepo                 # the private tree the commit is built in
    remote: str
    branch: str
    cloned: bool
    user: GitRepo | None = None   # the user's checkout (checkout mode only); never written but by ff

    def keep_unpushed(self, env: str, model: str, sha: str) -> str | None:
        """--no-push: keep the commit on a local branch of the user's checkout; its name (None in clone mode)."""
        if self.user is None:
            return None
        name = f"{PENDING_PREFIX}/{env}/{model}"
        private.update_branch(self.user, name, sha)
        return name

    def sync_user(self) -> str | None:
        """After a push: fast-forward the user's checkout when safe; what happened (None in clone mode)."""
        if self.user is None:
            return None
        return private.fast_forward(self.user, self.branch, f"refs/remotes/{self.remote}/{self.branch}")


def sweep_stale_clones(max_age: float = 3600.0) -> int:
    """Remove temporary trees a killed promotion left behind (SIGKILL skips the cleanup)."""
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
                   branch: str | None = None, clones: ClonePool | None = None) -> Iterator[Workspace]:
    if clones is not None:  # the receiver: a warm clone of its repo, refreshed to the tip and verified
        with clones.checkout() as repo:
            yield _in_clone(repo, clones.url, clones.branch, reuse=True)
        return
    tmp = Path(tempfile.mkdtemp(prefix=CLONE_PREFIX))
    try:
        if repo_url:
            yield _cloned(tmp, repo_url, branch or "main")
        else:
            with _worktree(tmp, config_path or find_config(), branch) as ws:
                yield ws
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _cloned(tmp: Path, repo_url: str, branch: str) -> Workspace:
    return _in_clone(GitRepo.clone(repo_url, branch, tmp / "repo", depth=1), repo_url, branch)


def _in_clone(repo: GitRepo, repo_url: str, branch: str, *, reuse: bool = False) -> Workspace:
    config = repo.root / CONFIG_FILE
    if not config.is_file():
        raise GitopsError(f"{redact(repo_url)}: no {CONFIG_FILE} at the top of branch {branch}")
    return Workspace(_pooled_config(config) if reuse else load_config(config), repo, "origin", branch,
                     cloned=True)


_POOLED_CONFIGS: dict[tuple[Path, bytes], Config] = {}
_POOLED_LOCK = threading.Lock()


def _pooled_config(path: Path) -> Config:
    """A warm clone's gitops.yaml, loaded again only when its bytes changed (Config is immutable, and
    it names the clone it was read from, which is part of the key)."""
    import hashlib

    key = (path, hashlib.sha256(path.read_bytes()).digest())
    with _POOLED_LOCK:
        cached = _POOLED_CONFIGS.get(key)
    if cached is None:
        cached = load_config(path)
        with _POOLED_LOCK:
            if len(_POOLED_CONFIGS) >= 16:
                _POOLED_CONFIGS.pop(next(iter(_POOLED_CONFIGS)))
            _POOLED_CONFIGS[key] = cached
    return cached


@contextmanager
def _worktree(tmp: Path, config_path: Path, branch: str | None) -> Iterator[Workspace]:
    local = load_config(config_path)  # only for where to go: remote and branch
    user = GitRepo.open(local.root)
    if user.root.resolve() != local.root.resolve():
        raise GitopsError(f"{local.source}: gitops.yaml must sit at the top of its Git repository ({user.root})")
    remote, branch = local.remote, branch or local.branch
    _fetch(user, remote, branch)
    tree = tmp / "tree"
    repo = private.add_worktree(user, tree, f"refs/remotes/{remote}/{branch}")
    try:
        config = tree / Path(local.source).resolve().relative_to(user.root)
        if not config.is_file():
            raise GitopsError(f"remote {remote!r} branch {branch!r} has no {config.relative_to(tree)}")
        yield Workspace(load_config(config), repo, remote, branch, cloned=False, user=user)
    except GitopsError as exc:
        raise _relocated(exc, tree, user.root, f"{remote}/{branch}") from None
    finally:
        private.remove_worktree(user, tree)


def _relocated(exc: GitopsError, tree: Path, root: Path, where: str) -> GitopsError:
    """Name files as the user knows them (their checkout's paths), and say whose content was read."""
    message = str(exc.args[0]) if exc.args else str(exc)
    if str(tree) not in message:
        return exc
    message = message.replace(str(tree.resolve()), str(root)).replace(str(tree), str(root))
    return GitopsError(f"{message}\n  (read from {where}, the remote's tip, not from your working tree)",
                       retryable=exc.retryable, hint=exc.hint)


def _fetch(user: GitRepo, remote: str, branch: str) -> None:
    try:
        user.fetch(remote, branch)
    except GitopsError as exc:
        url = redact(user._git("remote", "get-url", remote).out.strip() or "(no such remote)")
        raise GitopsError(f"{exc} (url {url}, checkout {user.root}); nothing changed", retryable=exc.retryable,
                          hint=exc.hint) from None
