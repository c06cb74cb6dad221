"""The receiver's warm clones (gitrepo.warm) under faults: each case must end in a correct commit.

Everything is real: a `mlflow server` with trained wine versions, the promotion engine in this
process (the call the receiver's handler makes, with its ClonePool), bare remotes on disk, a real
pre-receive hook holding a push while another writer lands, real corruption of the clone's files.
"Correct" is checked on the remote: the commit's parent is the remote's tip of that moment, the
decision was made from that tip's files (Previous-Version), and `git fsck` of the remote is clean.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path

import pytest

from gitops_tool.gitrepo.warm import ClonePool
from gitops_tool.promotion.engine import promote
from gitops_tool.promotion.model import PromotionRequest
from tests.promotion_fixtures import PromoRepo, add_model_to_config, git, make_repo, registry, trailers_of  # noqa: F401,E501
from tests.race_kit import deployed, ticket_hook

PROD_RELEASE = "environments/prod/release/wine-classifier.yaml"


def _no_gates(text: str) -> str:
    text, removed = re.subn(r"(?m)^    gates:\n(?:      .*\n)+", "", text)
    assert removed == 1
    return text


@pytest.fixture
def repo(tmp_path, registry) -> PromoRepo:  # noqa: F811
    return make_repo(tmp_path, registry.url, edit_config=_no_gates)


@pytest.fixture
def pool(tmp_path, repo):
    pool = ClonePool(str(repo.remote), "main", tmp_path / "warm")
    yield pool
    pool.close()


def _promote(pool: ClonePool, registry, version: str, delivery: str):  # noqa: F811
    registry.set_alias("champion", version)
    return promote(PromotionRequest(ref="wine-classifier@champion", repo_url=str(pool.url), trigger="webhook",
                                    delivery_id=delivery, event_version=version, tracking_uri=registry.url),
                   clones=pool)


def _assert_lands_on(repo: PromoRepo, result, parent: str, version: str, previous: str) -> None:
    tip = repo.remote_head()
    assert result.commit == tip, f"the job's commit {result.commit} is not the remote's tip {tip}"
    assert git(repo.remote, "rev-parse", f"{tip}^").strip() == parent
    t = trailers_of(repo.remote, tip)
    assert (t["Model-Version"], t["Previous-Version"]) == (version, previous)
    assert deployed(repo.remote, "wine-classifier", "prod")[0] == version
    git(repo.remote, "fsck", "--strict", "--no-dangling")


def _clone_dirs(pool: ClonePool) -> list[Path]:
    return sorted(p for p in pool.root.iterdir() if p.is_dir())


def test_second_job_reuses_the_warm_clone_and_builds_on_anothers_push(repo, pool, registry):  # noqa: F811
    first = _promote(pool, registry, registry.v1, "warm-1")
    _assert_lands_on(repo, first, git(repo.remote, "rev-parse", "main^").strip(), registry.v1, "none")
    other = repo.clone(repo.root.parent / "other")
    (other.root / "README.md").write_text("another writer\n")
    foreign = other.commit_and_push("another writer", "README.md")
    second = _promote(pool, registry, registry.v2, "warm-2")
    _assert_lands_on(repo, second, foreign, registry.v2, registry.v1)
    assert (pool.stats.fresh, pool.stats.warm, pool.stats.discarded) == (1, 1, [])
    assert len(_clone_dirs(pool)) == 1


def test_force_pushed_remote_the_warm_clone_follows_the_new_tip(repo, pool, registry):  # noqa: F811
    """The remote's history is rewritten (prod's promotion dropped) between two jobs: the second job
    decides from the rewritten tip's files and commits on it, never on the old history."""
    initial = repo.remote_head()
    first = _promote(pool, registry, registry.v1, "force-1")
    # Rewrite: a new commit on the initial one, force-pushed, so first.commit is no longer on main.
    rewrite = repo.clone(repo.root.parent / "rewrite")
    rewrite.git("reset", "-q", "--hard", initial)
    (rewrite.root / "README.md").write_text("history rewritten\n")
    rewrite.git("add", "README.md")
    rewrite.git("commit", "-q", "-m", "rewritten history")
    rewrite.git("push", "-q", "--force", "origin", "HEAD:refs/heads/main")
    new_tip = rewrite.head()
    second = _promote(pool, registry, registry.v2, "force-2")
    _assert_lands_on(repo, second, new_tip, registry.v2, "none")  # from the rewritten files, not v1
    assert subprocess_ok(repo.remote, "merge-base", "--is-ancestor", first.commit, "main") is False
    assert (pool.stats.fresh, pool.stats.warm) == (1, 1), "the warm clone should have followed the new tip"


def subprocess_ok(cwd: Path, *args: str) -> bool:
    import subprocess

    return subprocess.run(["git", *args], cwd=cwd, capture_output=True).returncode == 0


def _stray_file(clone: Path) -> None:
    (clone / "environments" / "prod" / "release" / "stray.yaml").write_text("kind: Stray\n")


def _ignored_file(clone: Path) -> None:
    (clone / ".git" / "info" / "exclude").write_text("*.tmp\n")
    (clone / "environments" / "prod" / "leftover.tmp").write_text("junk\n")


def _broken_index(clone: Path) -> None:
    (clone / ".git" / "index").write_bytes(b"DIRC\x00\x00\x00\x02garbage" * 4)


def _missing_object(clone: Path) -> None:
    """Delete the loose blob of prod's release file (the last job wrote it): the index still matches
    the tree, so only an object check notices."""
    import subprocess

    sha = subprocess.run(["git", "rev-parse", f"HEAD:{PROD_RELEASE}"], cwd=clone, capture_output=True, text=True,
                         check=True).stdout.strip()
    loose = clone / ".git" / "objects" / sha[:2] / sha[2:]
    assert loose.is_file(), f"expected {PROD_RELEASE}'s blob to be a loose object in the warm clone"
    loose.unlink()


def _tracked_edit(clone: Path) -> None:
    (clone / PROD_RELEASE).write_text("# edited by hand\n")


@pytest.mark.parametrize("damage", [_stray_file, _ignored_file, _broken_index, _missing_object],
                         ids=["stray-file", "ignored-file", "broken-index", "missing-object"])
def test_damaged_warm_clone_is_replaced_by_a_fresh_clone(repo, pool, registry, damage):  # noqa: F811
    first = _promote(pool, registry, registry.v1, "damage-1")
    [clone] = _clone_dirs(pool)
    damage(clone)
    second = _promote(pool, registry, registry.v2, "damage-2")
    _assert_lands_on(repo, second, first.commit, registry.v2, registry.v1)
    assert pool.stats.fresh == 2 and pool.stats.warm == 0, pool.stats
    assert len(pool.stats.discarded) == 1
    assert not clone.exists(), "the damaged clone was kept"


def test_a_hand_edit_of_a_tracked_file_is_reset_away(repo, pool, registry):  # noqa: F811
    """A tracked edit is what `reset --hard` exists for: the refreshed clone is the tip again, so it stays."""
    first = _promote(pool, registry, registry.v1, "edit-1")
    [clone] = _clone_dirs(pool)
    _tracked_edit(clone)
    second = _promote(pool, registry, registry.v2, "edit-2")
    _assert_lands_on(repo, second, first.commit, registry.v2, registry.v1)
    assert (pool.stats.fresh, pool.stats.warm) == (1, 1)


def test_push_race_the_job_re_decides_on_the_new_tip(repo, pool, registry, tmp_path):  # noqa: F811
    """A real pre-receive hook holds the job's push while another writer's push lands: receive-pack
    refuses the held push, the engine fetches into the warm clone, re-decides and lands on top."""
    _promote(pool, registry, registry.v1, "race-0")  # warm the pool
    tickets = tmp_path / "tickets"
    hook = ticket_hook(repo.remote, tickets, gates=1)
    result: dict[str, object] = {}
    job = threading.Thread(target=lambda: result.update(r=_promote(pool, registry, registry.v2, "race-1")))
    job.start()
    deadline = time.monotonic() + 60
    while not (tickets / "inflight-1").exists():
        assert time.monotonic() < deadline and job.is_alive(), "the job's push never reached the hook"
        time.sleep(0.02)
    other = repo.clone(tmp_path / "other")
    (other.root / "README.md").write_text("landed during the race\n")
    foreign = other.commit_and_push("another writer during the race", "README.md")
    (tickets / "gate-1").unlink()
    job.join(60)
    assert not job.is_alive()
    hook.unlink()
    _assert_lands_on(repo, result["r"], foreign, registry.v2, registry.v1)
    assert pool.stats.warm == 1 and pool.stats.discarded == []  # the race is no reason to doubt the clone


def test_concurrent_jobs_each_get_their_own_clone(repo, pool):
    with pool.checkout() as a, pool.checkout() as b:
        assert a.root != b.root
    with pool.checkout() as c:
        assert c.root in (a.root, b.root)
    assert (pool.stats.fresh, pool.stats.warm) == (2, 1)


def test_a_failed_job_throws_its_clone_away(repo, pool):
    with pytest.raises(RuntimeError):
        with pool.checkout() as a:
            raise RuntimeError("job crashed")
    assert not a.root.exists()
    with pool.checkout():
        pass
    assert (pool.stats.fresh, pool.stats.warm) == (2, 0)


def test_a_job_whose_push_was_refused_pushes_before_the_pools_other_jobs(repo, pool, tmp_path):
    """Turns: after losing a race, a job keeps the pool's turn until its retry has landed, so a job
    of the same receiver that finished rendering meanwhile cannot win again (the starvation the burst
    bench measured: 16 attempts for one job)."""
    from gitops_tool.gitrepo import PushRejected

    def commit(clone, name: str) -> None:
        (clone.root / name).write_text(name + "\n")
        clone.commit([name], f"add {name}")

    with pool.checkout() as loser, pool.checkout() as other:
        outsider = repo.clone(tmp_path / "outsider")
        (outsider.root / "outside.txt").write_text("x\n")
        outsider.commit_and_push("an outside writer", "outside.txt")
        commit(loser, "loser.txt")
        with pytest.raises(PushRejected):
            loser.push("origin", "main")
        commit(other, "other.txt")
        pushed = threading.Event()

        def push_other() -> None:
            try:
                other.push("origin", "main")
            except PushRejected:
                pass
            pushed.set()

        waiter = threading.Thread(target=push_other)
        waiter.start()
        assert not pushed.wait(0.5), "another job pushed while the refused one held the turn"
        loser.fetch("origin", "main")
        loser.reset_to("refs/remotes/origin/main", mode="--keep")
        commit(loser, "loser.txt")
        assert loser.push("origin", "main") is True
        assert pushed.wait(10)
        waiter.join()
    tip_files = git(repo.remote, "ls-tree", "--name-only", "main").split()
    assert "loser.txt" in tip_files and "other.txt" not in tip_files  # other lost once, to the loser's retry


class _WatchedTurn:
    """The pool's turn lock, telling the test when a job starts waiting for it."""

    def __init__(self) -> None:
        self.lock, self.waiting = threading.Lock(), threading.Event()

    def acquire(self) -> bool:
        self.waiting.set()
        return self.lock.acquire()

    def release(self) -> None:
        self.lock.release()


@pytest.mark.parametrize("writer,attempts", [("pool-job", 1), ("outsider", 2)])
def test_a_job_that_waited_for_its_turn_decides_again_on_the_newer_tip(repo, pool, registry, writer,  # noqa: F811
                                                                        attempts):
    """While a job waits for the push turn, v3 is deployed to prod. The job decides again on that tip:
    its commit says v3 -> v2, not the stale v1 -> v2 it had decided first. After another job of the
    pool (counted in pool.pushes) it moves there before building its commit (1 attempt); after an
    outside writer its push is refused first, then it fetches and decides again (2 attempts)."""
    _promote(pool, registry, registry.v1, "turn-0")
    v3 = registry.create_version_like("wine-classifier", registry.v2)["version"]
    pool._turn = turn = _WatchedTurn()
    turn.lock.acquire()  # as if another job of this receiver were committing
    result: dict[str, object] = {}
    job = threading.Thread(target=lambda: result.update(r=_promote(pool, registry, registry.v2, "turn-1")))
    job.start()
    assert turn.waiting.wait(60), "the job never asked for the turn"
    repo.sync()
    other = repo.promote("wine-classifier/" + v3, "--env", "prod")  # the CLI, in the user's checkout
    assert other.returncode == 0, other.stderr
    outside = repo.remote_head()
    if writer == "pool-job":
        pool.pushes += 1  # what TurnTakingRepo.push records when a job of this pool lands
    turn.lock.release()
    job.join(60)
    assert not job.is_alive()
    _assert_lands_on(repo, result["r"], outside, registry.v2, v3)
    assert f"after {attempts} attempt" in next(s.detail for s in result["r"].steps if s.name == "commit+push")


def test_a_changed_gitops_yaml_at_the_tip_is_read_again(repo, pool):
    """The pooled path reuses a loaded gitops.yaml only while its bytes are the same."""
    from gitops_tool.promotion.workspace import open_workspace

    with open_workspace(clones=pool) as ws:
        first = ws.cfg
    with open_workspace(clones=pool) as ws:
        assert ws.cfg is first  # same bytes, same clone: not loaded again
    config = repo.root / "gitops.yaml"
    config.write_text(add_model_to_config(config.read_text(), "iris-classifier"))
    repo.commit_and_push("map iris-classifier", "gitops.yaml")
    with open_workspace(clones=pool) as ws:
        assert "iris-classifier" in ws.cfg.models and "iris-classifier" not in first.models
