"""Deployment state on the MLflow model version (`gitops.<env>` tags), read back from a real MLflow.

Real parts: one `mlflow server` per module with two trained wine versions, bare Git remotes on
disk, the CLI as a subprocess (and the engine in-process where a registry change must land
between two of its steps). No stand-in: KUBECONFIG points at a missing file, so the Argo CD
refresh step reports `skipped` (no cluster credentials) and touches nothing.
"""

from __future__ import annotations

import json

import pytest
import requests
import yaml

from gitops_tool.promotion import after_push, version_tags
from gitops_tool.promotion.model import PromotionRequest
from tests.promotion_fixtures import WINE, add_model_to_config, make_repo, registry, repo  # noqa: F401

pytestmark = pytest.mark.slow
API = "/api/2.0/mlflow"


@pytest.fixture(autouse=True)
def no_cluster(tmp_path, monkeypatch):
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-kubeconfig"))


def _ok(res):
    assert res.returncode == 0, f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    return res


def _env(repo, tmp_path):
    return repo.env(KUBECONFIG=str(tmp_path / "no-kubeconfig"))


def tag(registry, version: str, env: str, model: str = WINE) -> dict | None:
    """The gitops.<env> tag as MLflow stores it, parsed (None when absent)."""
    tags = {t["key"]: t["value"] for t in registry.get_version(version, model).get("tags", [])}
    return json.loads(tags[f"gitops.{env}"]) if f"gitops.{env}" in tags else None


def clear(registry, version: str, *envs: str) -> None:
    for env in envs:
        requests.delete(f"{registry.url}{API}/model-versions/delete-tag",
                        json={"name": WINE, "version": version, "key": f"gitops.{env}"}, timeout=30)


def test_committed_promotion_tags_the_version_with_its_commit(repo, registry, tmp_path):
    clear(registry, registry.v2, "dev")
    registry.set_alias("candidate", registry.v2)
    out = json.loads(_ok(repo.promote(f"{WINE}@candidate", "-o", "json", env=_env(repo, tmp_path))).stdout)
    recorded = tag(registry, registry.v2, "dev")
    assert recorded["state"] == "committed" and recorded["commit"] == out["commit"] == repo.remote_head()
    assert recorded["trigger"] == "manual" and recorded["updated"].endswith("Z")
    assert "commit_url" not in recorded  # the repo is a bare path on disk, not a known forge
    steps = {s["name"]: s for s in out["steps"]}
    assert steps["record on version"]["status"] == "ok"
    assert steps["record on version"]["detail"] == "gitops.dev: committed"
    assert steps["argocd refresh"]["status"] == "skipped" and "no cluster credentials" in steps["argocd refresh"]["detail"]
    assert list(steps).index("argocd refresh") > list(steps).index("commit+push")

    again = json.loads(_ok(repo.promote(f"{WINE}@candidate", "-o", "json", env=_env(repo, tmp_path))).stdout)
    assert again["skipped"] == "already promoted"
    assert {s["name"]: s["status"] for s in again["steps"]}["record on version"] == "skipped"
    assert tag(registry, registry.v2, "dev")["updated"] == recorded["updated"]  # nothing written


def test_gate_refusal_is_recorded_with_the_gate_and_its_numbers(tmp_path, registry):
    repo = make_repo(tmp_path, registry.url, edit_config=lambda t: t.replace("accuracy >= 0.85", "accuracy >= 0.99"))
    clear(registry, registry.v1, "dev")
    registry.set_alias("candidate", registry.v1)
    before = repo.snapshot()
    res = repo.promote(f"{WINE}@candidate", env=_env(repo, tmp_path))
    assert res.returncode == 1
    acc = registry.wine.v1["metrics"]["accuracy"]
    recorded = tag(registry, registry.v1, "dev")
    assert recorded["state"] == "refused" and recorded["gate"] == "metrics"
    assert recorded["reason"] == f"gate metrics: {WINE} version {registry.v1}: accuracy = {acc:g}, needs >= 0.99"
    assert "commit" not in recorded
    assert repo.snapshot() == before  # nothing committed


def test_rollback_tags_both_versions_and_a_held_automatic_promotion_says_why(repo, registry, tmp_path):
    env = _env(repo, tmp_path)
    v1, v2 = registry.v1, registry.v2
    for version in (v1, v2):
        registry.set_alias("candidate", version)
        _ok(repo.promote(f"{WINE}@candidate", env=env))
    clear(registry, v1, "dev")
    res = _ok(repo.cli("rollback", WINE, "--env", "dev", env=env))
    assert "record on version" in res.stdout
    rolled = repo.remote_head()
    left, restored = tag(registry, v2, "dev"), tag(registry, v1, "dev")
    assert (left["state"], left["commit"], left["reason"]) == ("rolled_back", rolled, f"rolled back to {v1}")
    assert (restored["state"], restored["commit"], restored["trigger"]) == ("committed", rolled, "rollback")

    res = _ok(repo.promote(f"{WINE}@candidate", "--trigger", "webhook", env=env))  # @candidate is still v2
    assert "held: rollback from" in res.stdout and repo.remote_head() == rolled
    held = tag(registry, v2, "dev")
    assert (held["state"], held["reason"], held["trigger"]) == ("held", f"rollback from {v2} to {v1}", "webhook")

    clear(registry, v2, "dev")
    _ok(repo.cli("reconcile", "--dry-run", env=env))
    assert tag(registry, v2, "dev") is None  # a dry run records nothing
    res = _ok(repo.cli("reconcile", env=env))  # reconcile skips the held pair before promoting
    assert "held" in res.stdout and repo.remote_head() == rolled
    held = tag(registry, v2, "dev")
    assert (held["state"], held["reason"], held["trigger"]) == ("held", f"rollback from {v2} to {v1}", "reconcile")


def test_dry_run_and_bad_input_write_no_tag(repo, registry, tmp_path):
    env = _env(repo, tmp_path)
    clear(registry, registry.v1, "dev", "staging", "nope")
    registry.set_alias("candidate", registry.v1)
    _ok(repo.promote(f"{WINE}@candidate", "--dry-run", env=env))
    assert tag(registry, registry.v1, "dev") is None
    res = repo.promote(f"{WINE}/{registry.v1}", "--env", "nope", env=env)
    assert res.returncode == 1 and "nope" in res.stderr
    res = repo.promote(f"{WINE}/{registry.v1}", "--env", "staging", "--image-tag", "bad tag!", env=env)
    assert res.returncode in (1, 2)
    assert all(tag(registry, registry.v1, e) is None for e in ("dev", "staging", "nope"))


def test_promotion_commits_when_the_version_is_deleted_before_its_tag_write(tmp_path, registry, monkeypatch,
                                                                           capsys):
    """The real registry refuses the set-tag (the version is gone by then): the commit stands, exit 0,
    a warning line on the CLI, and the receiver's metrics count the failed write."""
    from gitops_tool.cli import promotion_commands
    from gitops_tool.webhook.metrics import Metrics

    model = "wine-deleted"
    repo = make_repo(tmp_path, registry.url, edit_config=lambda t: add_model_to_config(t, model))
    _, version = registry.add_model(model)

    def refresh_then_delete(cfg, env):  # runs right before the tag write: the version disappears meanwhile
        resp = requests.delete(f"{registry.url}{API}/model-versions/delete",
                               json={"name": model, "version": version}, timeout=30)
        assert resp.ok, resp.text
        return "skipped", "test: version deleted here"

    monkeypatch.setattr(after_push, "request_refresh", refresh_then_delete)
    before = version_tags.failures()
    code = promotion_commands.promote(PromotionRequest(
        ref=f"{model}/{version}", env="dev", config_path=repo.root / "gitops.yaml", tracking_uri=registry.url),
        output="text")
    captured = capsys.readouterr()
    assert code == 0
    assert f"pushed {repo.remote_head()}" in captured.out
    assert "failed   record on version" in captured.out and "not found" in captured.out
    assert "warning: record on version failed" in captured.err
    assert "the promotion itself went through" in captured.err
    assert version_tags.failures() == before + 1
    scraped = Metrics(lambda: 0).render()[0].decode()
    assert f"gitops_version_tag_write_failures_total {float(before + 1)}" in scraped


def test_commit_url_for_known_forges_only():
    sha = "a" * 40
    assert version_tags.commit_url("https://github.com/acme/ml-platform.git", sha) == \
        f"https://github.com/acme/ml-platform/commit/{sha}"
    assert version_tags.commit_url("git@github.com:acme/ml-platform.git", sha) == \
        f"https://github.com/acme/ml-platform/commit/{sha}"
    assert version_tags.commit_url("https://gitlab.com/acme/ml/platform.git", sha) == \
        f"https://gitlab.com/acme/ml/platform/-/commit/{sha}"
    assert version_tags.commit_url("/srv/git/platform.git", sha) is None
    assert version_tags.commit_url("https://git.example.com/acme/platform.git", sha) is None


def test_record_never_raises_and_counts(registry):
    before = version_tags.counts()
    assert version_tags.record(None, WINE, registry.v1, "dev", "committed") == "no MLflow tracking URI configured"
    assert "lower_snake" in version_tags.record(None, WINE, registry.v1, "dev", "Not A State")
    assert version_tags.counts()["failures"] == before["failures"] + 2
    assert yaml.safe_load(version_tags.value("held", reason="x" * 5000))["reason"].endswith("…")


def test_a_promotion_adds_exactly_one_registry_round_trip(repo, registry, monkeypatch):
    """Every registry request of the engine counted: the tag is one POST set-tag; a skip sends none."""
    import gitops_tool.registry.client as client_mod
    from gitops_tool.promotion.engine import promote

    calls: list[str] = []
    original = client_mod.RegistryClient._request

    def counted(self, method, path, what, **kwargs):
        calls.append(f"{method} {path.removeprefix(client_mod.API)}")
        return original(self, method, path, what, **kwargs)

    monkeypatch.setattr(client_mod.RegistryClient, "_request", counted)
    request = PromotionRequest(ref=f"{WINE}/{registry.v1}", env="staging", config_path=repo.root / "gitops.yaml",
                               tracking_uri=registry.url)
    assert promote(request).pushed
    assert calls.count("POST /model-versions/set-tag") == 1
    assert [c for c in calls if c.startswith("POST")] == ["POST /model-versions/set-tag"]
    assert len(calls) == 3  # resolve the version, read its run's metrics for the gate, write the tag
    calls.clear()
    assert promote(request).skipped == "already promoted"
    assert calls == ["GET /model-versions/get"]  # decided before the gates; nothing to record


def test_a_refusal_whose_tag_write_fails_says_so_in_the_error_hint(tmp_path, registry, monkeypatch):
    """The gate refuses; the real registry then rejects the set-tag (the version is deleted just before):
    the error is still the gate's, exit path unchanged, and its hint says the refusal was not recorded."""
    import gitops_tool.registry.client as client_mod
    from gitops_tool.errors import GitopsError
    from gitops_tool.promotion.engine import promote

    model = "wine-refused-gone"
    repo = make_repo(tmp_path, registry.url, edit_config=lambda t: add_model_to_config(
        t, model, gates="    gates:\n      metrics: [accuracy >= 0.999]"))
    low, _ = registry.add_model(model)
    original = client_mod.RegistryClient.set_version_tag

    def delete_then_tag(self, name, version, key, value, **kw):
        requests.delete(f"{registry.url}{API}/model-versions/delete", json={"name": name, "version": version},
                        timeout=30)
        return original(self, name, version, key, value, **kw)

    monkeypatch.setattr(client_mod.RegistryClient, "set_version_tag", delete_then_tag)
    before = repo.snapshot()
    with pytest.raises(GitopsError) as caught:
        promote(PromotionRequest(ref=f"{model}/{low}", env="dev", config_path=repo.root / "gitops.yaml",
                                 tracking_uri=registry.url))
    text = str(caught.value)
    assert text.startswith(f"gate metrics: {model} version {low}: accuracy = ")
    assert "hint: the refusal was not recorded on the version" in text and "not found" in text
    assert repo.snapshot() == before
