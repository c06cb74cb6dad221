"""Canary promotions through the real CLI: `promote --canary`, `--complete`, `--abort` and their bad input.

Real parts: one `mlflow server` per module with trained wine versions, a bare Git remote on disk, the
CLI as a subprocess, the real kustomize rendering prod and the KServe InferenceService CRD schema from
../shared/schemas validating it. No stand-in: nothing here talks to a cluster.
"""

from __future__ import annotations

import json

import pytest
import yaml

from tests.conftest import find, render_docs
from tests.promotion_fixtures import WINE, registry, repo, trailers_of  # noqa: F401

pytestmark = pytest.mark.slow

IMAGE = "registry.example.com/ml/wine-classifier:v{}"


def _ok(res):
    assert res.returncode == 0, f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    return res


def _fails(res, *needles: str):
    assert res.returncode == 1, f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    for needle in needles:
        assert needle in res.stderr, f"{needle!r} not in:\n{res.stderr}"
    return res


def _isvc(repo, env: str = "prod") -> dict:
    return find(render_docs(repo.root / "environments" / env), "InferenceService", WINE)


def _valid(repo, schema_dir, env: str = "prod") -> None:
    _ok(repo.cli("validate", env, "--schema-dir", str(schema_dir)))


def _gitops_tags(registry, *versions: str) -> dict:
    """The gitops.<env> tags of each version, read back from the real MLflow."""
    return {version: {t["key"]: json.loads(t["value"]) for t in registry.get_version(version).get("tags", [])
                      if t["key"].startswith("gitops.")} for version in versions}


def _prod_state(registry, version: str) -> dict:
    return _gitops_tags(registry, version)[version]["gitops.prod"]


@pytest.fixture
def prod_at_v1(repo, registry):
    """prod serves v1 (through staging, as the starter's require_previous_stage wants); v2 ran in staging."""
    v1, v2 = registry.v1, registry.v2
    for version in (v1, v2):
        _ok(repo.promote(f"{WINE}/{version}", "--env", "staging"))
    _ok(repo.promote(f"{WINE}/{v1}", "--env", "prod"))
    repo.sync()
    return repo


def test_a_canary_at_10_percent_renders_then_completes(prod_at_v1, registry, schema_dir):
    repo, v1, v2 = prod_at_v1, registry.v1, registry.v2
    _ok(repo.promote(f"{WINE}/{v2}", "--env", "prod", "--canary", "10"))
    repo.sync()
    trailers = trailers_of(repo.root)
    assert (trailers["Canary"], trailers["Model-Version"], trailers["Previous-Version"]) == ("10%", v2, v1)
    isvc = _isvc(repo)
    assert isvc["spec"]["predictor"]["canaryTrafficPercent"] == 10
    assert isvc["spec"]["predictor"]["containers"][0]["image"] == IMAGE.format(v2)
    assert isvc["metadata"]["annotations"]["gitops-tool.io/model-version"] == v2
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
    _valid(repo, schema_dir)
    started = _prod_state(registry, v2)
    assert (started["state"], started["percent"], started["stable"], started["commit"]) == (
        "canary_started", "10", v1, repo.remote_head())

    rows = {r["env"]: r for r in json.loads(_ok(repo.cli("status", "-o", "json")).stdout)["rows"]}
    assert rows["prod"]["canary"] == f"canary 10% -> v{v2} (stable v{v1})"
    assert f"canary 10% -> v{v2} (stable v{v1})" in _ok(repo.cli("status")).stdout

    # While it runs: automatic triggers skip (documented), a manual promotion and a rollback refuse.
    registry.set_alias("champion", v1)
    before = repo.remote_head()
    skipped = json.loads(_ok(repo.promote(f"{WINE}@champion", "--trigger", "reconcile", "-o", "json")).stdout)
    assert skipped["skipped"] == f"canary 10% -> v{v2} (stable v{v1}) running; complete or abort it first"
    _fails(repo.promote(f"{WINE}/{v1}", "--env", "prod"), "complete or abort it")
    _fails(repo.cli("rollback", WINE, "--env", "prod"), "runs a canary", "--abort")
    assert repo.remote_head() == before

    _ok(repo.promote("--complete", WINE, "--env", "prod"))
    repo.sync()
    trailers = trailers_of(repo.root)
    assert (trailers["Trigger"], trailers["Canary"], trailers["Model-Version"]) == ("canary-complete", "complete", v2)
    isvc = _isvc(repo)
    assert "canaryTrafficPercent" not in isvc["spec"]["predictor"]
    annotations = isvc["metadata"]["annotations"]
    assert "gitops-tool.io/canary-from" not in annotations
    assert json.loads(annotations["gitops-tool.io/deployed-before"])[0]["version"] == v1  # rollback target
    _valid(repo, schema_dir)
    completed = _prod_state(registry, v2)
    assert (completed["state"], completed["commit"]) == ("canary_completed", repo.remote_head())

    history = _ok(repo.cli("history", WINE, "--env", "prod")).stdout.splitlines()
    assert "canary complete" in history[0] and "canary 10%" in history[1]

    head = repo.remote_head()
    _fails(repo.promote("--complete", WINE, "--env", "prod"), f"no canary of {WINE} is running in prod",
           f"serves version {v2}")
    assert repo.remote_head() == head


def test_abort_restores_the_stable_version_and_holds(prod_at_v1, registry, schema_dir):
    repo, v1, v2 = prod_at_v1, registry.v1, registry.v2
    stable_since = yaml.safe_load(repo.release("prod", f"{WINE}.yaml").read_text())["metadata"]["annotations"][
        "gitops-tool.io/deployed-at"]
    _ok(repo.promote(f"{WINE}/{v2}", "--env", "prod", "--canary", "25"))
    _ok(repo.promote("--abort", WINE, "--env", "prod", "--reason", "latency looked wrong"))
    repo.sync()
    trailers = trailers_of(repo.root)
    assert (trailers["Trigger"], trailers["Model-Version"], trailers["Previous-Version"]) == ("canary-abort", v1, v2)
    isvc = _isvc(repo)
    annotations = isvc["metadata"]["annotations"]
    assert annotations["gitops-tool.io/model-version"] == v1
    assert isvc["spec"]["predictor"]["containers"][0]["image"] == IMAGE.format(v1)
    assert "canaryTrafficPercent" not in isvc["spec"]["predictor"]
    assert annotations["gitops-tool.io/hold"] == f"canary of {v2} aborted: latency looked wrong"
    assert annotations["gitops-tool.io/deployed-at"] == stable_since  # v1 never stopped serving
    _valid(repo, schema_dir)
    aborted = _prod_state(registry, v2)
    assert (aborted["state"], aborted["reason"], aborted["commit"]) == (
        "canary_aborted", "latency looked wrong", repo.remote_head())
    # The hold keeps reconcile from re-promoting the aborted version while @champion still names it.
    registry.set_alias("champion", v2)
    out = json.loads(_ok(repo.promote(f"{WINE}@champion", "--trigger", "reconcile", "-o", "json")).stdout)
    assert out["skipped"].startswith("held: canary of")


def test_bad_canary_input_fails_and_changes_nothing(prod_at_v1, registry):
    repo, v1, v2 = prod_at_v1, registry.v1, registry.v2
    before, tags_before = repo.snapshot(), _gitops_tags(registry, v1, v2)
    _fails(repo.promote(f"{WINE}/{v2}", "--env", "staging", "--canary", "10"),
           "environment staging runs KServe in Standard mode, which has no canary")
    for percent in ("0", "100", "-5"):
        _fails(repo.promote(f"{WINE}/{v2}", "--env", "prod", "--canary", percent), f"--canary {percent}:", "1-99")
    _fails(repo.promote("--complete", WINE, "--env", "prod"), "no canary of wine-classifier is running in prod")
    _fails(repo.promote("--abort", WINE, "--env", "prod"), "nothing to complete or abort")
    _fails(repo.promote(f"{WINE}/{v2}", "--env", "dev", "--canary", "10"), "dev runs KServe in Standard mode")
    assert repo.promote("--complete", WINE).returncode == 2  # usage: --env is required
    assert repo.promote(f"{WINE}/{v2}", "--env", "prod", "--canary", "10", "--abort").returncode == 2
    assert repo.snapshot() == before
    assert _gitops_tags(registry, v1, v2) == tags_before  # bad input writes no tag
