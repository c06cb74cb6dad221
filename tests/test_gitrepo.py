"""The Git layer against real repositories: bare remotes on disk, real git, real processes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from gitops_tool.errors import GitopsError
from gitops_tool.gitrepo import (
    CommitPlan,
    GitRepo,
    PushRejected,
    commit_and_push,
    init_bare_remote,
    push_branch,
)

ROOT = Path(__file__).resolve().parents[1]
TRAILERS = {
    "Model": "churn-classifier",
    "Model-Version": "7",
    "Previous-Version": "6",
    "Alias": "champion",
    "Run-Id": "0a1b2c3d4e5f",
    "Image": "registry.local/mlflow-serve:2.0@sha256:abc",
    "Trigger": "webhook",
}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


@pytest.fixture
def origin(tmp_path: Path) -> Path:
    """A bare remote with one commit on main holding two overlay files."""
    remote = init_bare_remote(tmp_path / "remote.git")
    seed = tmp_path / "seed"
    git(tmp_path, "clone", "-q", str(remote), str(seed))
    (seed / "overlays" / "prod").mkdir(parents=True)
    (seed / "overlays" / "prod" / "model.yaml").write_text("version: '1'\n")
    (seed / "overlays" / "staging").mkdir(parents=True)
    (seed / "overlays" / "staging" / "model.yaml").write_text("version: '1'\n")
    repo = GitRepo.open(seed)
    assert repo.commit([Path("overlays")], "initial overlays") is not None
    push_branch(repo, "origin", "main")
    return remote


def clone(origin: Path, dest: Path) -> GitRepo:
    return GitRepo.clone(str(origin), "main", dest)


def remote_sha(origin: Path) -> str:
    return git(origin, "rev-parse", "refs/heads/main").strip()


def set_file(rel: str, content: str, subject: str = "set file"):
    """An apply() that writes ``content`` to ``rel``; None if it is already there."""

    def apply(repo: GitRepo) -> CommitPlan | None:
        path = repo.root / rel
        if path.exists() and path.read_text() == content:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        return CommitPlan([Path(rel)], subject, trailers={"Trigger": "test"})

    return apply


# -- commits and trailers -----------------------------------------------------------


def test_commit_trailers_read_back_by_git_and_log_records(origin: Path, tmp_path: Path) -> None:
    repo = clone(origin, tmp_path / "w")
    (repo.root / "overlays/prod/model.yaml").write_text("version: '7'\n")
    sha = repo.commit(["overlays/prod/model.yaml"], "promote churn-classifier 7 to prod",
                      body="Alias champion moved from 6 to 7.", trailers=TRAILERS)
    assert sha == repo.head_sha()

    message = git(repo.root, "log", "-1", "--format=%B")
    parsed = subprocess.run(["git", "interpret-trailers", "--parse"], input=message, cwd=repo.root,
                            capture_output=True, text=True, check=True).stdout
    assert parsed.splitlines() == [f"{k}: {v}" for k, v in TRAILERS.items()]
    assert message.startswith("promote churn-classifier 7 to prod\n\nAlias champion moved from 6 to 7.\n\n")

    [rec] = repo.log_records(max_count=1)
    assert rec.sha == sha and rec.subject == "promote churn-classifier 7 to prod"
    assert rec.trailers == TRAILERS and list(rec.trailers) == list(TRAILERS)
    assert rec.timestamp.tzinfo is not None and abs(time.time() - rec.timestamp.timestamp()) < 120


def test_commit_without_changes_returns_none_and_makes_no_commit(origin: Path, tmp_path: Path) -> None:
    repo = clone(origin, tmp_path / "w")
    before = repo.head_sha()
    (repo.root / "overlays/prod/model.yaml").write_text("version: '1'\n")  # same content
    assert repo.commit(["overlays/prod/model.yaml"], "noop", trailers=TRAILERS) is None
    assert repo.commit(["overlays/does-not-exist"], "noop") is None
    assert repo.head_sha() == before


def test_commit_stages_only_named_paths_and_records_deletions(origin: Path, tmp_path: Path) -> None:
    repo = clone(origin, tmp_path / "w")
    (repo.root / "overlays/staging/model.yaml").write_text("version: '2'\n")
    git(repo.root, "add", "overlays/staging/model.yaml")  # staged by someone else: must not be swept in
    (repo.root / "overlays/prod/model.yaml").unlink()
    (repo.root / "overlays/prod/new.yaml").write_text("a: 1\n")
    sha = repo.commit([repo.root / "overlays/prod"], "rework prod")
    changed = git(repo.root, "show", "--name-status", "--format=", sha).split("\n")
    assert sorted(filter(None, changed)) == ["A\toverlays/prod/new.yaml", "D\toverlays/prod/model.yaml"]
    assert repo.status() == [("M ", "overlays/staging/model.yaml")]


def test_commit_works_without_any_git_identity(origin: Path, tmp_path: Path, monkeypatch) -> None:
    repo = clone(origin, tmp_path / "w")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", os.devnull)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for var in ("GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL", "GIT_COMMITTER_NAME", "GIT_COMMITTER_EMAIL", "EMAIL"):
        monkeypatch.delenv(var, raising=False)
    (repo.root / "a.txt").write_text("a\n")
    sha = repo.commit(["a.txt"], "no identity")
    assert git(repo.root, "log", "-1", "--format=%an <%ae>|%cn <%ce>", sha).strip() == \
        "gitops-tool <gitops-tool@localhost>|gitops-tool <gitops-tool@localhost>"
    assert not (tmp_path / ".gitconfig").exists()  # fallback passed with -c, never written

    monkeypatch.setenv("GIT_AUTHOR_NAME", "Release Bot")
    monkeypatch.setenv("GIT_AUTHOR_EMAIL", "bot@example.com")
    (repo.root / "a.txt").write_text("b\n")
    sha = repo.commit(["a.txt"], "env identity")
    assert git(repo.root, "log", "-1", "--format=%an <%ae>", sha).strip() == "Release Bot <bot@example.com>"

    (repo.root / "a.txt").write_text("c\n")
    sha = repo.commit(["a.txt"], "explicit author", author="Jane Doe <jane@example.com>")
    assert git(repo.root, "log", "-1", "--format=%an <%ae>", sha).strip() == "Jane Doe <jane@example.com>"


def test_log_records_filters_by_path(origin: Path, tmp_path: Path) -> None:
    repo = clone(origin, tmp_path / "w")
    for env, ver in [("prod", "2"), ("staging", "3"), ("prod", "4")]:
        (repo.root / f"overlays/{env}/model.yaml").write_text(f"version: '{ver}'\n")
        repo.commit([f"overlays/{env}/model.yaml"], f"{env} -> {ver}", trailers={"Model-Version": ver})
    prod = repo.log_records(["overlays/prod"])
    # The clone is shallow: its boundary commit counts as adding every file.
    assert [r.subject for r in prod] == ["prod -> 4", "prod -> 2", "initial overlays"]
    assert [r.trailers.get("Model-Version") for r in prod] == ["4", "2", None]
    assert [r.subject for r in repo.log_records(max_count=2)] == ["prod -> 4", "staging -> 3"]
    assert prod[0].trailers == {"Model-Version": "4"}


# -- open / clone / clean / restore -------------------------------------------------


def test_open_from_subdirectory_and_errors(origin: Path, tmp_path: Path) -> None:
    repo = clone(origin, tmp_path / "w")
    sub = GitRepo.open(repo.root / "overlays" / "prod")
    assert sub.root == repo.root and sub.current_branch() == "main"
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(GitopsError, match="plain"):
        GitRepo.open(plain)


def test_clone_of_missing_url_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.git"
    with pytest.raises(GitopsError) as err:
        GitRepo.clone(str(missing), "main", tmp_path / "dest")
    assert str(missing) in str(err.value) and "'main'" in str(err.value)


def test_clone_of_missing_branch_names_it(origin: Path, tmp_path: Path) -> None:
    with pytest.raises(GitopsError, match="'release'"):
        GitRepo.clone(str(origin), "release", tmp_path / "dest")


def test_ensure_clean_lists_files_and_restore_reverts_them(origin: Path, tmp_path: Path) -> None:
    repo = clone(origin, tmp_path / "w")
    repo.ensure_clean()
    prod = repo.root / "overlays/prod"
    (prod / "model.yaml").write_text("version: 'dirty'\n")
    (prod / "extra" ).mkdir()
    (prod / "extra" / "added.yaml").write_text("x: 1\n")
    (repo.root / "notes.txt").write_text("keep me\n")
    with pytest.raises(GitopsError) as err:
        repo.ensure_clean()
    assert "overlays/prod/model.yaml" in str(err.value) and "overlays/prod/extra/added.yaml" in str(err.value)
    repo.ensure_clean([repo.root / "overlays/staging"])  # only those paths: clean

    git(repo.root, "add", "overlays/prod/extra/added.yaml")  # staged new files are removed too
    repo.restore([prod])
    assert (prod / "model.yaml").read_text() == "version: '1'\n"
    assert not (prod / "extra").exists()
    assert (repo.root / "notes.txt").read_text() == "keep me\n"  # outside the paths: untouched
    repo.ensure_clean([prod])


# -- push classification ------------------------------------------------------------


def test_push_non_fast_forward_is_retryable_push_rejected(origin: Path, tmp_path: Path) -> None:
    a, b = clone(origin, tmp_path / "a"), clone(origin, tmp_path / "b")
    for repo, content in [(a, "a"), (b, "b")]:
        (repo.root / "x.txt").write_text(content)
        repo.commit(["x.txt"], f"from {content}")
    b.push("origin", "main")
    with pytest.raises(PushRejected) as err:
        a.push("origin", "main")
    assert err.value.retryable and "'origin'" in str(err.value) and "'main'" in str(err.value)


def test_push_output_classification_on_captured_git_output() -> None:
    from gitops_tool.gitrepo._run import Result
    from gitops_tool.gitrepo.pushout import check_push

    def out(status: str) -> str:
        return f"To /srv/remote.git\n{status}\nDone"

    lock = Result(1, out("!\tHEAD:refs/heads/main\t[remote rejected] (failed to update ref)"),
                  "remote: error: cannot lock ref 'refs/heads/main': is at 1a but expected 2b        \n"
                  "error: failed to push some refs to '/srv/remote.git'")
    with pytest.raises(PushRejected):
        check_push(lock, "origin", "main")
    hook = Result(1, out("!\tHEAD:refs/heads/main\t[remote rejected] (hook declined)"), "remote: no\n")
    with pytest.raises(GitopsError) as err:
        check_push(hook, "origin", "main")
    assert not isinstance(err.value, PushRejected) and "remote: no" in str(err.value)
    assert check_push(Result(0, out("=\tHEAD:refs/heads/main\t[up to date]"), ""), "origin", "main") is False
    assert check_push(Result(0, out(" \tHEAD:refs/heads/main\t1a..2b"), ""), "origin", "main") is True


# -- commit_and_push -------------------------------------------------------------------


def test_rejected_push_is_refetched_reapplied_and_lands_linearly(origin: Path, tmp_path: Path) -> None:
    a, b = clone(origin, tmp_path / "a"), clone(origin, tmp_path / "b")
    other = commit_and_push(b, remote="origin", branch="main", apply=set_file("overlays/staging/model.yaml", "v: b\n"))
    assert other.pushed and other.attempts == 1

    calls = []

    def apply(repo: GitRepo) -> CommitPlan | None:
        calls.append(repo.head_sha())
        return set_file("overlays/prod/model.yaml", "v: a\n", "promote a")(repo)

    res = commit_and_push(a, remote="origin", branch="main", apply=apply, backoff=0.01)
    assert res.pushed and res.attempts == 2 and res.skipped is None
    assert calls == [calls[0], other.commit]  # second apply ran on the other writer's commit
    assert remote_sha(origin) == res.commit == a.head_sha()
    assert git(origin, "rev-list", "--merges", "main") == ""
    assert git(origin, "rev-list", "--count", "main").strip() == "3"
    assert git(origin, "log", "--format=%s", "main").splitlines()[:2] == ["promote a", "set file"]
    a.ensure_clean()


def test_skipped_when_other_writer_already_made_the_change(origin: Path, tmp_path: Path) -> None:
    a, b = clone(origin, tmp_path / "a"), clone(origin, tmp_path / "b")
    first = commit_and_push(b, remote="origin", branch="main",
                            apply=set_file("overlays/prod/model.yaml", "v: 7\n", "by b"))
    res = commit_and_push(a, remote="origin", branch="main",
                          apply=set_file("overlays/prod/model.yaml", "v: 7\n", "by a"), backoff=0.01)
    assert res == type(res)(commit=None, pushed=False, attempts=2, skipped="no change")
    assert a.head_sha() == remote_sha(origin) == first.commit
    a.ensure_clean()

    # An apply that always returns a plan (no content check) is also skipped: empty diff.
    def blind(repo: GitRepo) -> CommitPlan:
        (repo.root / "overlays/prod/model.yaml").write_text("v: 7\n")
        return CommitPlan(["overlays/prod/model.yaml"], "blind")

    res = commit_and_push(a, remote="origin", branch="main", apply=blind)
    assert res.skipped == "no change" and res.commit is None and a.head_sha() == first.commit


def test_byte_identical_commit_already_on_remote_is_skipped(origin: Path, tmp_path: Path, monkeypatch) -> None:
    # Same parent, tree, message and second: both writers produce the same sha and
    # the second push is "up to date". That is not a commit of ours landing.
    for var in ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE"):
        monkeypatch.setenv(var, "2030-01-01T00:00:00Z")
    a, b = clone(origin, tmp_path / "a"), clone(origin, tmp_path / "b")
    first = commit_and_push(b, remote="origin", branch="main", apply=set_file("f.txt", "1\n"))
    res = commit_and_push(a, remote="origin", branch="main", apply=set_file("f.txt", "1\n"))
    assert first.pushed and res == type(res)(commit=None, pushed=False, attempts=1, skipped="no change")
    assert a.head_sha() == first.commit == remote_sha(origin)


def test_push_false_commits_locally_only(origin: Path, tmp_path: Path) -> None:
    a = clone(origin, tmp_path / "a")
    before = remote_sha(origin)
    res = commit_and_push(a, remote="origin", branch="main", apply=set_file("f.txt", "1\n"), push=False)
    assert res.commit == a.head_sha() and not res.pushed and remote_sha(origin) == before


def test_hook_rejection_is_terminal_and_leaves_everything_as_it_was(origin: Path, tmp_path: Path) -> None:
    a = clone(origin, tmp_path / "a")
    hook = origin / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'policy: prod promotions are frozen until Monday' >&2\nexit 1\n")
    hook.chmod(0o755)
    (a.root / "scratch.txt").write_text("unrelated untracked file\n")
    orig, remote_before = a.head_sha(), remote_sha(origin)

    def apply(repo: GitRepo) -> CommitPlan:
        (repo.root / "overlays/prod/model.yaml").write_text("version: '9'\n")
        (repo.root / "overlays/prod/new-patch.yaml").write_text("p: 1\n")
        return CommitPlan(["overlays/prod"], "promote 9", trailers={"Model-Version": "9"})

    with pytest.raises(GitopsError) as err:
        commit_and_push(a, remote="origin", branch="main", apply=apply)
    msg = str(err.value)
    assert "policy: prod promotions are frozen until Monday" in msg and "hook declined" in msg
    assert "'origin'" in msg and "'main'" in msg and not err.value.retryable
    assert a.head_sha() == orig and a.current_branch() == "main"
    assert a.status() == [("??", "scratch.txt")]
    assert (a.root / "overlays/prod/model.yaml").read_text() == "version: '1'\n"
    assert remote_sha(origin) == remote_before


def test_removed_remote_is_terminal_and_leaves_no_local_commit(origin: Path, tmp_path: Path) -> None:
    a = clone(origin, tmp_path / "a")
    orig = a.head_sha()
    shutil.rmtree(origin)
    with pytest.raises(GitopsError) as err:
        commit_and_push(a, remote="origin", branch="main", apply=set_file("overlays/prod/model.yaml", "v: 2\n"))
    assert "'origin'" in str(err.value) and not err.value.retryable
    assert a.head_sha() == orig
    a.ensure_clean()


def test_exhausted_attempts_roll_back(origin: Path, tmp_path: Path) -> None:
    a, b = clone(origin, tmp_path / "a"), clone(origin, tmp_path / "b")
    orig = a.head_sha()
    rounds = []

    def apply(repo: GitRepo) -> CommitPlan:
        # A rival that always wins: it pushes right after we read the head.
        rounds.append(1)
        b.fetch("origin", "main")
        b.reset_hard_to_remote("origin", "main")
        (b.root / "rival.txt").write_text(f"{len(rounds)}\n")
        b.commit(["rival.txt"], "rival")
        b.push("origin", "main")
        return set_file("mine.txt", "mine\n")(repo)

    with pytest.raises(GitopsError) as err:
        commit_and_push(a, remote="origin", branch="main", apply=apply, attempts=3, backoff=0.01)
    assert err.value.retryable and "3 attempts" in str(err.value) and "'origin'" in str(err.value)
    assert len(rounds) == 3 and a.head_sha() == orig and not (a.root / "mine.txt").exists()
    a.ensure_clean()


def test_untracked_file_the_remote_starts_tracking_is_never_clobbered(origin: Path, tmp_path: Path) -> None:
    a, b = clone(origin, tmp_path / "a"), clone(origin, tmp_path / "b")
    commit_and_push(b, remote="origin", branch="main", apply=set_file("overlays/staging/extra.yaml", "theirs\n"))
    (a.root / "overlays/staging/extra.yaml").write_text("my local draft\n")  # untracked in a
    orig = a.head_sha()
    with pytest.raises(GitopsError, match="extra.yaml"):
        commit_and_push(a, remote="origin", branch="main", apply=set_file("f.txt", "1\n"), backoff=0.01)
    assert (a.root / "overlays/staging/extra.yaml").read_text() == "my local draft\n"
    assert a.head_sha() == orig and a.status() == [("??", "overlays/staging/extra.yaml")]


def test_dirty_tracked_tree_is_refused_before_any_change(origin: Path, tmp_path: Path) -> None:
    a = clone(origin, tmp_path / "a")
    (a.root / "overlays/staging/model.yaml").write_text("local edit\n")
    with pytest.raises(GitopsError, match="overlays/staging/model.yaml"):
        commit_and_push(a, remote="origin", branch="main", apply=set_file("f.txt", "1\n"))
    assert (a.root / "overlays/staging/model.yaml").read_text() == "local edit\n"


# -- real concurrent writers -----------------------------------------------------------

WRITER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from gitops_tool.gitrepo import CommitPlan, GitRepo, commit_and_push

    origin, dest, rel, content, start_at, attempts, backoff = sys.argv[1:8]
    repo = GitRepo.clone(origin, "main", Path(dest))
    time.sleep(max(0.0, float(start_at) - time.time()))  # everyone starts from the same head

    def apply(repo):
        path = repo.root / rel
        if path.exists() and path.read_text() == content:
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        return CommitPlan([rel], f"write {rel}", trailers={"Trigger": dest})

    res = commit_and_push(repo, remote="origin", branch="main", apply=apply, attempts=int(attempts),
                          backoff=float(backoff))
    print(json.dumps({"commit": res.commit, "pushed": res.pushed, "attempts": res.attempts,
                      "skipped": res.skipped}))
    """
)


def run_writers(origin: Path, tmp_path: Path, jobs: list[tuple[str, str]], attempts: int = 6,
                backoff: float = 0.2) -> list[dict]:
    start_at = time.time() + 2.0
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(origin), str(tmp_path / f"w{i}"), rel, content,
                          str(start_at), str(attempts), str(backoff)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        for i, (rel, content) in enumerate(jobs)
    ]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out))
    return results


def test_eight_concurrent_writers_to_different_files_all_land(origin: Path, tmp_path: Path) -> None:
    base = remote_sha(origin)
    # All 8 are released at the same instant: every round at least one lands, so the
    # last one may need ~8 attempts (default is 6, sized for realistic contention).
    jobs = [(f"overlays/env{i}/model.yaml", f"v: {i}\n") for i in range(8)]
    results = run_writers(origin, tmp_path, jobs, attempts=12, backoff=0.1)
    assert all(r["pushed"] for r in results)
    assert git(origin, "rev-list", "--merges", "main") == ""
    landed = git(origin, "rev-list", f"{base}..main").split()
    assert sorted(landed) == sorted(r["commit"] for r in results)
    assert sum(r["attempts"] for r in results) > 8  # they really did collide and retry
    for i in range(8):
        assert git(origin, "show", f"main:overlays/env{i}/model.yaml") == f"v: {i}\n"


def test_two_writers_same_change_exactly_one_lands(origin: Path, tmp_path: Path) -> None:
    base = remote_sha(origin)
    results = run_writers(origin, tmp_path, [("overlays/prod/model.yaml", "version: '8'\n")] * 2)
    assert sorted(r["pushed"] for r in results) == [False, True]
    assert sorted(str(r["skipped"]) for r in results) == ["None", "no change"]
    assert git(origin, "rev-list", "--count", f"{base}..main").strip() == "1"
