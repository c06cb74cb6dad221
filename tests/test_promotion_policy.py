"""Issue 12, findings 4 and 12-22: gates, reconcile, config checks and the CLI's edges.

Real parts: one `mlflow server` per module (runs and versions made over its REST API, NaN metrics
included), bare remotes on disk, the CLI as subprocesses, the real kustomize. No stand-ins.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import requests

from gitops_tool.errors import GitopsError
from tests.conftest import run_cli
from tests.promotion_fixtures import (  # noqa: F401 - fixtures
    API, WINE, add_model_to_config, make_repo, registry, repo, trailers_of,
)
from tests.race_kit import deployed

pytestmark = pytest.mark.slow
GATED = "    gates:\n      no_worse_than_deployed: [f1]"


def _ok(res: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert res.returncode == 0, f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    return res


def _version_with(registry, model: str, **metrics: str) -> str:
    """A real run with these metric values ("NaN" allowed) and a version of ``model`` on it."""
    run = registry._post("runs/create", {"experiment_id": "0"})["run"]["info"]["run_id"]
    for key, value in metrics.items():
        registry._post("runs/log-metric", {"run_id": run, "key": key, "value": value, "timestamp": 0, "step": 0})
    requests.post(f"{registry.url}{API}/registered-models/create", json={"name": model}, timeout=30)
    return registry._post("model-versions/create", {"name": model, "source": f"s3://models/{model}/{run}",
                                                    "run_id": run})["model_version"]["version"]


def _gated_repo(tmp_path, registry, model: str, extra: str = ""):
    return make_repo(tmp_path, registry.url,
                     edit_config=lambda t: add_model_to_config(t, model, gates=GATED + extra))


# -- 12, 13: no_worse_than_deployed --------------------------------------------------------------------


def test_12_deleted_baseline_follows_on_missing_baseline_and_names_the_gate(tmp_path, registry):
    model = "baseline-gone"
    old, new = _version_with(registry, model, f1="0.8"), _version_with(registry, model, f1="0.9")
    repo = _gated_repo(tmp_path, registry, model)
    _ok(repo.promote(f"{model}/{old}", "--env", "dev"))
    resp = requests.delete(f"{registry.url}{API}/model-versions/delete", json={"name": model, "version": old},
                           timeout=30)
    assert resp.ok, resp.text
    for extra in ((), ("--force",)):
        res = repo.promote(f"{model}/{new}", "--env", "dev", *extra)
        assert res.returncode == 1 and "gate no_worse_than_deployed: no baseline" in res.stderr, res.stderr
        assert f"version {old}" in res.stderr and "on_missing_baseline: pass" in res.stderr
    cfg = repo.root / "gitops.yaml"
    cfg.write_text(cfg.read_text().replace(GATED, GATED + "\n      on_missing_baseline: pass"))
    repo.commit_and_push("gates: promote without a baseline", "gitops.yaml")
    res = _ok(repo.promote(f"{model}/{new}", "--env", "dev"))
    assert "no baseline" in res.stdout and deployed(repo.remote, model, "dev") == (new, None)


def test_13_nan_never_passes(tmp_path, registry):
    model = "nan-metrics"
    good, nan, poor = (_version_with(registry, model, f1=v) for v in ("0.8", "NaN", "0.01"))
    repo = _gated_repo(tmp_path, registry, model)
    _ok(repo.promote(f"{model}/{good}", "--env", "dev"))
    res = repo.promote(f"{model}/{nan}", "--env", "dev")
    assert res.returncode == 1 and "f1 is NaN; NaN never passes" in res.stderr, res.stderr
    _ok(repo.promote(f"{model}/{nan}", "--env", "staging"))  # nothing deployed there: nothing to compare
    res = repo.promote(f"{model}/{poor}", "--env", "staging")
    assert res.returncode == 1 and f"version {nan} has NaN for metric 'f1'" in res.stderr, res.stderr
    assert deployed(repo.remote, model, "staging") == (nan, None)


# -- 14, 15: reconcile -------------------------------------------------------------------------------------


def test_14_a_model_missing_from_the_registry_fails_only_its_own_pairs(tmp_path, registry):
    repo = make_repo(tmp_path, registry.url, edit_config=lambda t: add_model_to_config(t, "never-registered"))
    registry.set_alias("candidate", registry.v1)
    res = repo.cli("reconcile", "-o", "json")
    assert res.returncode == 1, res.stdout + res.stderr
    items = json.loads(res.stdout)["items"]
    ghost = [i for i in items if i["model"] == "never-registered"]
    assert ghost and all(i["action"] == "failed" and "not found" in i["detail"] for i in ghost)
    assert [i["action"] for i in items if i["model"] == WINE and i["env"] == "dev"] == ["promoted"]
    assert deployed(repo.remote, WINE, "dev") == (registry.v1, None)
    # The receiver's drift check (a real shallow clone, the real registry) isolates it the same way.
    from prometheus_client import CollectorRegistry

    from gitops_tool.webhook.drift import DriftMonitor, clone_check

    metrics = CollectorRegistry()
    monitor = DriftMonitor(metrics, clone_check(str(repo.remote), "main", registry.url), interval=60)
    assert monitor.run_once()
    assert metrics.get_sample_value("gitops_drift", {"model": WINE, "env": "dev", "alias": "candidate"}) == 0
    assert metrics.get_sample_value("gitops_drift_check_errors_total") == 3  # never-registered x 3 envs


def test_15_reconcile_runs_in_stage_order_and_its_dry_run_runs_the_gates(tmp_path, registry):
    # dev is listed first in gitops.yaml, but here its gate needs staging first.
    repo = make_repo(tmp_path, registry.url, edit_config=lambda t: t.replace(
        "require_previous_stage: {prod: staging}", "require_previous_stage: {dev: staging}"))
    registry.set_alias("candidate", registry.v2)
    registry.set_alias("challenger", registry.v2)
    registry.set_alias("champion", registry.v1)
    cfg = repo.root / "gitops.yaml"
    cfg.write_text(cfg.read_text().replace("accuracy >= 0.85", "accuracy >= 0.95"))  # v1 (0.926) fails
    repo.commit_and_push("stricter metric gate", "gitops.yaml")
    dry = json.loads(repo.cli("reconcile", "--dry-run", "-o", "json").stdout)
    prod = next(i for i in dry["items"] if i["env"] == "prod")
    assert prod["action"] == "failed" and "gate metrics" in prod["detail"], dry
    rec = json.loads(repo.cli("reconcile", "-o", "json").stdout)
    actions = {(i["env"], i["action"]) for i in rec["items"]}
    assert {("staging", "promoted"), ("dev", "promoted"), ("prod", "failed")} <= actions, rec
    order = [i["env"] for i in rec["items"]]
    assert order.index("staging") < order.index("dev")


# -- 4, 18: config checks at load ----------------------------------------------------------------------------


@pytest.mark.parametrize("edit, needle", [
    (lambda t: t.replace("      challenger: staging\n", "      challenger: dev\n"),
     "aliases 'candidate' and 'challenger' both map to environment 'dev'"),
    (lambda t: t.replace("      challenger: staging\n", "      latest: staging\n"), "alias 'latest' is reserved"),
    (lambda t: t.replace("accuracy >= 0.85", "accuracy >= 0.8.5"), "gates.metrics[0]: 'accuracy >= 0.8.5'"),
])
def test_4_18_config_errors_are_caught_when_gitops_yaml_loads(project, edit, needle):
    cfg = project / "gitops.yaml"
    cfg.write_text(edit(cfg.read_text()))
    res = run_cli("validate", cwd=project)
    assert res.returncode == 1 and needle in res.stderr and "Traceback" not in res.stderr, res.stderr
    assert "models" in res.stderr and "wine-classifier" in res.stderr


# -- 17: a hand edit of only newTag --------------------------------------------------------------------------


def test_17_hand_edited_tag_is_drift_and_reconcile_restores_it(repo, registry):
    registry.set_alias("candidate", registry.v1)
    _ok(repo.promote(f"{WINE}@candidate"))
    path = repo.release("dev")
    path.write_text(path.read_text().replace(f"newTag: v{registry.v1}", "newTag: hotfix"))
    repo.commit_and_push("dev: try a hotfix image")
    dev = next(r for r in json.loads(repo.cli("status", "-o", "json").stdout)["rows"] if r["env"] == "dev")
    assert dev["drift"] == ["candidate"] and dev["image"].endswith(":hotfix")
    rec = json.loads(repo.cli("reconcile", "-o", "json").stdout)
    assert [i["action"] for i in rec["items"] if i["env"] == "dev"] == ["promoted"], rec
    assert f"newTag: v{registry.v1}" in subprocess.run(
        ["git", "show", "refs/heads/main:environments/dev/release/kustomization.yaml"], cwd=repo.remote,
        capture_output=True, text=True).stdout


# -- 19, 20: the CLI's edges ---------------------------------------------------------------------------------


def test_19_history_into_a_closed_pipe_is_quiet(repo, registry):
    for version in (registry.v1, registry.v2):
        _ok(repo.promote(f"{WINE}/{version}", "--env", "dev"))
    history = f"'{sys.executable}' -m gitops_tool.cli.main history {WINE}"
    # `true` exits before the CLI has started, so its first write meets a closed pipe every time.
    for reader, shown in (("head -1", 1), ("true", 0)):
        res = subprocess.run(["bash", "-c", f"{history} | {reader}; echo \"rc=${{PIPESTATUS[0]}}\""],
                             cwd=repo.root, env=repo.env(), capture_output=True, text=True, timeout=60)
        assert "Traceback" not in res.stderr and "BrokenPipe" not in res.stderr, res.stderr
        lines = res.stdout.splitlines()
        assert len(lines) == shown + 1 and lines[-1] in ("rc=0", "rc=141"), res.stdout  # never 3 (a bug)


def test_20_usage_errors_exit_2(repo, registry):
    cases = [
        (["promote", WINE], "cannot parse model reference"),
        (["promote", f"{WINE}/{registry.v1}"], "a version reference needs --env"),
        (["render", "nosuch"], "nosuch"),
        (["promote", f"{WINE}@candidate", "--pr", "--no-push"], "--pr and --no-push cannot be combined"),
        (["promote", f"{WINE}@candidate", "--pr", "--dry-run"], "--pr and --dry-run cannot be combined"),
        (["rollback", WINE, "--env", "dev", "--dry-run", "--no-push"], "cannot be combined"),
    ]
    before = repo.snapshot()
    for args, needle in cases:
        res = repo.cli(*args)
        assert res.returncode == 2 and needle in res.stderr, (args, res.returncode, res.stderr)
    assert repo.snapshot() == before


# -- 21: Delivery-Id names the event the commit enacts -------------------------------------------------------


def test_21_delivery_id_is_recorded_only_when_the_commit_enacts_that_event(repo, registry):
    from gitops_tool.promotion.engine import promote
    from gitops_tool.promotion.model import PromotionRequest

    registry.set_alias("candidate", registry.v2)  # the event named v1; the alias has moved on since
    result = promote(PromotionRequest(ref=f"{WINE}@candidate", repo_url=str(repo.remote), trigger="webhook",
                                      delivery_id="d-old", event_version=registry.v1, tracking_uri=registry.url))
    assert result.commit and result.to_version == registry.v2
    t = trailers_of(repo.remote, "refs/heads/main")
    assert "Delivery-Id" not in t and t["Model-Version"] == registry.v2
    body = subprocess.run(["git", "log", "-1", "--format=%b", "refs/heads/main"], cwd=repo.remote,
                          capture_output=True, text=True).stdout
    assert f"Delivery d-old named version {registry.v1}" in body
    registry.set_alias("challenger", registry.v2)
    promote(PromotionRequest(ref=f"{WINE}@challenger", repo_url=str(repo.remote), trigger="webhook",
                             delivery_id="d-now", event_version=registry.v2, tracking_uri=registry.url))
    assert trailers_of(repo.remote, "refs/heads/main")["Delivery-Id"] == "d-now"


def test_config_check_function_is_callable_on_its_own():
    """The lead's build_config calls check_model directly (issue 10 restructures the loader)."""
    from gitops_tool.config.model_checks import check_model

    with pytest.raises(GitopsError, match="both map to environment 'dev'"):
        check_model("m", {"aliases": {"a": "dev", "b": "dev"}}, ["dev"], lambda parts: ".".join(map(str, parts)))


# -- 16: dropping a served model or an environment -----------------------------------------------------------


def test_16_generate_refuses_to_drop_a_served_model_until_retired(tmp_path, registry):
    model = "retiree"
    old, _ = registry.add_model(model)
    repo = make_repo(tmp_path, registry.url, edit_config=lambda t: add_model_to_config(t, model))
    _ok(repo.promote(f"{model}/{old}", "--env", "dev"))
    repo.git("pull", "-q", "--ff-only")
    cfg = repo.root / "gitops.yaml"
    with_model = cfg.read_text()
    cfg.write_text(with_model[:with_model.index(f"  {model}:\n")])
    res = repo.cli("generate")
    assert res.returncode == 1 and f"refusing to drop model {model} (still served in dev)" in res.stderr
    assert f"gitops-tool retire {model} --env dev" in res.stderr and "--prune" in res.stderr
    assert repo.porcelain().strip() == "M gitops.yaml"  # nothing else written
    cfg.write_text(with_model)
    dry = _ok(repo.cli("retire", model, "--env", "dev", "--dry-run"))
    assert "dry run" in dry.stdout and deployed(repo.remote, model, "dev") == (old, None)
    res = _ok(repo.cli("retire", model, "--env", "dev"))
    assert "pushed" in res.stdout and deployed(repo.remote, model, "dev") == (None, None)
    assert trailers_of(repo.remote, "refs/heads/main")["Trigger"] == "retire"
    cfg.write_text(with_model[:with_model.index(f"  {model}:\n")])
    _ok(repo.cli("generate"))
    assert not (repo.root / "base" / "serving" / model).exists()
    _ok(repo.cli("render", "dev"))


def test_16_generate_refuses_to_drop_an_environment_without_prune(project):
    import yaml

    cfg = project / "gitops.yaml"
    doc = yaml.safe_load(cfg.read_text())
    del doc["environments"]["prod"]
    for model in doc["models"].values():
        model["aliases"] = {a: e for a, e in model["aliases"].items() if e != "prod"}
        model.get("gates", {}).pop("require_previous_stage", None)
    cfg.write_text(yaml.safe_dump(doc, sort_keys=False))
    apps = (project / "argocd" / "applications.yaml").read_text()
    res = run_cli("generate", cwd=project)
    assert res.returncode == 1 and "refusing to drop environment prod" in res.stderr, res.stderr
    assert (project / "argocd" / "applications.yaml").read_text() == apps and "mlflow-platform-prod" in apps
    _ok(run_cli("generate", "--prune", cwd=project))
    assert "mlflow-platform-prod" not in (project / "argocd" / "applications.yaml").read_text()


# -- 22: a new alias mapping without a restart ----------------------------------------------------------------


def test_22_receiver_follows_a_changed_alias_map_without_restart(project):
    """Real receiver (uvicorn on loopback) routing signed deliveries; the handler records the job."""
    import os

    from gitops_tool.config import load_config
    from gitops_tool.webhook.app import create_app
    from gitops_tool.webhook.server import running
    from tests.test_webhook_receiver import Recorder, alias_body, post, settings

    cfg = project / "gitops.yaml"
    rec = Recorder()
    app = create_app(settings(config_path=cfg), rec, load_config(cfg))
    with running(app) as url:
        first = post(url, alias_body("shadow", "3"))
        assert first.status_code == 200 and first.json()["status"] == "ignored"
        cfg.write_text(cfg.read_text().replace("      candidate: dev\n", "      shadow: dev\n"))
        os.utime(cfg, ns=(1, 1))  # a new mtime even within the filesystem's timestamp granularity
        second = post(url, alias_body("shadow", "3"))
        assert second.status_code == 202 and second.json()["environment"] == "dev", second.text
        cfg.write_text("not: [valid")  # a broken edit keeps the last good map
        third = post(url, alias_body("shadow", "4"))
        assert third.status_code == 202, third.text
        rec.wait_for(2)
