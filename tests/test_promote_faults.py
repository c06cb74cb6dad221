"""Bad input and faults: each `gitops-tool promote` failure names the object, exits non-zero and leaves
local HEAD, the remote's main and the working tree exactly as they were.

Real parts: one `mlflow server` per module, bare remotes on disk (with a real pre-receive hook),
the CLI as a subprocess, the real kustomize. Stand-ins (tests/mlflow_harness.py RecordingServer, a
loopback http.server) only where a real MLflow cannot produce the case: a registry answering 503,
and a version still PENDING_REGISTRATION (MLflow's own store creates versions READY at once; the
first test shows that with a version created over REST).
"""

from __future__ import annotations

import json
import stat
import time

import pytest

from gitops_tool.mlflow_local import free_port
from tests.mlflow_harness import RecordingServer
from tests.promotion_fixtures import (  # noqa: F401 - fixtures
    git,
    WINE,
    add_model_to_config,
    make_repo,
    registry,
    repo,
)

pytestmark = pytest.mark.slow


def _fails(repo, *args, code: int = 1, **kw):
    before = repo.snapshot()
    res = repo.promote(*args, **kw)
    assert res.returncode == code, f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    assert repo.snapshot() == before, "a failed promotion changed HEAD, the remote or the working tree"
    assert "Traceback" not in res.stderr
    return res


def _json(status: int, payload: dict):
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


# -- bad references ------------------------------------------------------------------------------


def test_model_not_in_gitops_yaml(repo):
    res = _fails(repo, "ghost@candidate")
    assert "model 'ghost' is not defined" in res.stderr and "wine-classifier" in res.stderr


def test_model_generated_locally_but_not_pushed_names_the_missing_step(repo, registry):
    """Promotions build on the remote's tip: a model whose generated base/serving/<model>/ is only in the
    working tree gets a clear error (found by following the README's onboarding), not kustomize's."""
    from gitops_tool.project import generate

    config = repo.root / "gitops.yaml"
    config.write_text(config.read_text().rstrip("\n") + "\n  wine-copy:\n    registered_model: wine-classifier\n"
                      "    image_repository: registry.example.com/ml/wine-copy\n    aliases: {candidate: dev}\n")
    generate(config)
    # `git commit -a` takes the edited gitops.yaml but not the new, untracked base/serving/wine-copy/.
    git(repo.root, "commit", "-qam", "serve wine-copy")
    git(repo.root, "push", "-q")
    registry.set_alias("candidate", registry.v1)
    res = _fails(repo, "wine-copy@candidate")
    assert "base/serving/wine-copy/ is missing, so wine-copy cannot be released in dev" in res.stderr
    assert "run `gitops-tool generate`, then commit and push its output" in res.stderr
    assert "kustomize" not in res.stderr


def test_model_in_config_but_not_in_registry(tmp_path, registry):
    repo = make_repo(tmp_path, registry.url, edit_config=lambda t: add_model_to_config(t, "ghost-model"))
    res = _fails(repo, "ghost-model@candidate")
    assert "model 'ghost-model' alias 'candidate' not found in MLflow" in res.stderr and registry.url in res.stderr


def test_unknown_alias_and_unknown_version(repo, registry):
    registry.set_alias("challenger", registry.v1)
    resp = __import__("requests").delete(f"{registry.url}/api/2.0/mlflow/registered-models/alias",
                                         json={"name": WINE, "alias": "challenger"}, timeout=10)
    assert resp.ok
    res = _fails(repo, f"{WINE}@challenger")
    assert f"model '{WINE}' alias 'challenger' not found" in res.stderr
    res = _fails(repo, f"{WINE}/99", "--env", "dev")
    assert f"model '{WINE}' version 99 not found" in res.stderr


def test_bad_syntax_unknown_env_and_usage_errors(repo, registry):
    res = _fails(repo, "wine-classifier", code=2)
    assert "cannot parse model reference 'wine-classifier'" in res.stderr and "MODEL@ALIAS" in res.stderr
    res = _fails(repo, f"{WINE}/{registry.v1}", "--env", "qa")
    assert "environment 'qa' is not defined" in res.stderr and "dev, staging, prod" in res.stderr
    res = _fails(repo, f"{WINE}@candidate", "--trigger", "cron", code=2)
    assert "--trigger" in res.stderr


def test_version_not_ready_is_refused(repo, registry):
    """Stand-in: a loopback recorder answers like MLflow with a PENDING_REGISTRATION version.

    A real MLflow 3.x server cannot show one: its SQL store creates versions READY synchronously,
    even over REST `model-versions/create` (checked first, against the real server)."""
    created = registry.create_version_like(WINE, registry.v1)
    assert created["status"] == "READY"
    pending = {"name": WINE, "version": "7", "status": "PENDING_REGISTRATION", "run_id": "r", "source": "s"}
    with RecordingServer(lambda rec: _json(200, {"model_version": pending})) as fake:
        res = _fails(repo, f"{WINE}/7", "--env", "dev", "--tracking-uri", fake.url)
    assert f"model '{WINE}' version 7" in res.stderr and "PENDING_REGISTRATION, not READY" in res.stderr


# -- the registry failing --------------------------------------------------------------------------


def test_registry_unreachable_names_uri_in_bounded_time(repo):
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    start = time.monotonic()
    res = _fails(repo, f"{WINE}@candidate", "--tracking-uri", uri)
    elapsed = time.monotonic() - start
    assert uri in res.stderr and "cannot connect" in res.stderr and "gave up after 4 attempts" in res.stderr
    assert elapsed < 20, elapsed


def test_registry_answering_503_is_retried_then_fails(repo):
    """Stand-in: a loopback http.server answering 503 plays a failing registry (MLflow cannot be made to)."""
    with RecordingServer(lambda rec: (503, {}, b"service unavailable")) as fake:
        start = time.monotonic()
        res = _fails(repo, f"{WINE}@candidate", "--tracking-uri", fake.url)
        elapsed = time.monotonic() - start
    assert len(fake.requests) == 4  # 1 + 3 retries, then it gives up
    assert fake.url in res.stderr and "HTTP 503" in res.stderr and f"model '{WINE}' alias 'candidate'" in res.stderr
    assert elapsed < 20, elapsed


# -- Git failing -----------------------------------------------------------------------------------


def test_push_rejected_by_pre_receive_hook(repo, registry):
    hook = repo.remote / "hooks" / "pre-receive"
    hook.write_text("#!/bin/sh\necho 'POLICY: dev is frozen for the release window' >&2\nexit 1\n")
    hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    registry.set_alias("candidate", registry.v1)
    res = _fails(repo, f"{WINE}@candidate")
    assert "POLICY: dev is frozen for the release window" in res.stderr
    assert "hook declined" in res.stderr and "branch 'main'" in res.stderr
    hook.unlink()
    repo.promote(f"{WINE}@candidate").check_returncode()  # works once the hook is gone


def test_corrupted_release_yaml_names_the_file(repo, registry):
    path = repo.release("dev")
    path.write_text(path.read_text().replace("images: []", "images: [unclosed"))
    repo.commit_and_push("break the dev release")
    registry.set_alias("candidate", registry.v1)
    res = _fails(repo, f"{WINE}@candidate")
    assert f"{path}: corrupted YAML" in res.stderr


def test_release_that_does_not_render_names_the_file(repo, registry):
    path = repo.release("dev")
    path.write_text(path.read_text().replace("resources: []", "resources:\n  - ../does-not-exist"))
    repo.commit_and_push("dev release points at a missing resource")
    registry.set_alias("candidate", registry.v1)
    res = _fails(repo, f"{WINE}@candidate")
    assert "environments/dev" in res.stderr and "does-not-exist" in res.stderr
    assert not repo.release("dev", f"{WINE}.yaml").exists()


def test_dirty_working_tree_is_neither_read_nor_touched(repo, registry):
    """The user's uncommitted edits are not state: the promotion builds on the remote's tip, and the
    checkout is fast-forwarded around the edit (git refuses only when the edit is in the way)."""
    dirty = repo.root / "environments" / "dev" / "kustomization.yaml"
    dirty.write_text(dirty.read_text() + "# local experiment\n")
    registry.set_alias("candidate", registry.v1)
    res = repo.promote(f"{WINE}@candidate")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "fast-forwarded" in res.stdout and repo.head() == repo.remote_head()
    assert "# local experiment" not in git_show(repo, "environments/dev/kustomization.yaml")
    assert dirty.read_text().endswith("# local experiment\n")  # the user's edit is kept
    assert repo.porcelain().strip() == "M environments/dev/kustomization.yaml"
    # An edit in the way of the fast-forward: the push still lands, the checkout is left as it was.
    registry.set_alias("candidate", registry.v2)
    release = repo.release("dev", f"{WINE}.yaml")
    release.write_text(release.read_text() + "# mine\n")
    head = repo.head()
    res = repo.promote(f"{WINE}@candidate")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "was not fast-forwarded" in res.stdout and repo.head() == head != repo.remote_head()
    assert release.read_text().endswith("# mine\n")


def git_show(repo, path: str) -> str:
    return repo.git("show", f"refs/heads/main:{path}")
