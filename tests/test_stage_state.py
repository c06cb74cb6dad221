"""Canary and soak state read from the release files alone (real `init` projects, real release edits on disk).

No registry or Git: the decisions here depend only on the files at the tip, which these tests write
with the same edits a promotion makes.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from gitops_tool.config import load_config
from gitops_tool.config.stage_checks import parse_duration
from gitops_tool.kustomize.release import CANARY_FROM_ANNOTATION, DEPLOYED_AT_ANNOTATION, parse_image, read_release
from gitops_tool.kustomize.release_edit import ReleaseEdit, plan_release_edit
from gitops_tool.promotion import canary, soak

WINE = "wine-classifier"
IMAGE = "registry.example.com/ml/wine-classifier:v{}"
NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)


def _stamp(minutes_ago: int) -> str:
    return (NOW - timedelta(minutes=minutes_ago)).strftime("%Y-%m-%dT%H:%M:%SZ")


def _edit(project, env: str, version: str, **fields) -> None:
    edit = ReleaseEdit(WINE, version, image=parse_image(IMAGE.format(version)), **fields)
    for path, text in plan_release_edit(project / "environments" / env, edit).items():
        path.write_text(text)


def _canary(project, env: str, version: str, percent: int, stable: str, since: str | None) -> None:
    stable_json = {"version": stable, "image": IMAGE.format(stable), "deployedAt": since}
    _edit(project, env, version, canary_percent=percent, deployed_at=_stamp(1),
          annotations=((CANARY_FROM_ANNOTATION, json.dumps(stable_json)),))


@pytest.fixture
def cfg(project):
    path = project / "gitops.yaml"
    marker = "  staging:\n    namespace: models-staging\n"
    path.write_text(path.read_text().replace(marker, marker + "    soak: 30m\n"))
    return load_config(path)


def test_a_running_canary_has_not_run_here_until_it_completes(project):
    _edit(project, "prod", "1", deployed_at=_stamp(60))
    _canary(project, "prod", "2", 10, "1", _stamp(60))
    state = read_release(project / "environments" / "prod")[WINE]
    assert (state.version, state.canary_percent, state.canary_from().version) == ("2", 10, "1")
    assert state.versions_run() == {"1"}  # require_previous_stage does not count the canary
    assert canary.describe(state) == "canary 10% -> v2 (stable v1)"
    _edit(project, "prod", "2", canary_percent=0, annotations=((CANARY_FROM_ANNOTATION, None),))
    state = read_release(project / "environments" / "prod")[WINE]
    assert state.canary_percent is None and canary.describe(state) is None and "2" in state.versions_run()
    assert "canaryTrafficPercent" not in (project / "environments/prod/release" / f"{WINE}.yaml").read_text()


def test_the_deployed_at_stamp_changes_only_with_the_version(project):
    _edit(project, "dev", "1", deployed_at=_stamp(60))
    _edit(project, "dev", "1", deployed_at=_stamp(0), hold="kept")  # same version: the stamp stays
    assert read_release(project / "environments" / "dev")[WINE].annotations[DEPLOYED_AT_ANNOTATION] == _stamp(60)
    _edit(project, "dev", "2", deployed_at=_stamp(0))
    assert read_release(project / "environments" / "dev")[WINE].annotations[DEPLOYED_AT_ANNOTATION] == _stamp(0)


def test_soak_measures_from_the_deploying_commit_in_the_upstream_environment(cfg, project):
    model = cfg.model(WINE)
    assert soak.upstream(model, "prod") == "staging" and soak.upstream(model, "staging") is None
    assert soak.shortfall(cfg, model, "prod", "1", NOW) == f"soak 30m in staging: {WINE} version 1 has not served in staging"
    _edit(project, "staging", "1", deployed_at=_stamp(10))
    assert soak.shortfall(cfg, model, "prod", "1", NOW) == (
        f"soak 30m in staging: {WINE} version 1 has served there 10m (since {_stamp(10)}); 20m to go")
    _edit(project, "staging", "1", deployed_at=_stamp(45))  # same version: the stamp is not rewritten
    assert "has served there 10m" in soak.shortfall(cfg, model, "prod", "1", NOW)
    assert soak.shortfall(cfg, model, "prod", "1", NOW + timedelta(minutes=20)) is None
    assert soak.shortfall(cfg, model, "staging", "1", NOW) is None  # dev has no soak: staging is not held back


def test_soak_with_a_canary_or_a_newer_version_upstream(cfg, project):
    model = cfg.model(WINE)
    _edit(project, "staging", "1", deployed_at=_stamp(120))
    _canary(project, "staging", "2", 20, "1", _stamp(120))
    assert soak.shortfall(cfg, model, "prod", "2", NOW).endswith("is a canary (20%) in staging, not yet its release there")
    assert soak.shortfall(cfg, model, "prod", "1", NOW) is None  # the stable version keeps its time
    _edit(project, "staging", "2", canary_percent=0, deployed_at=None,
          annotations=((CANARY_FROM_ANNOTATION, None), (DEPLOYED_AT_ANNOTATION, _stamp(5))))
    assert "version 2 has served there 5m" in soak.shortfall(cfg, model, "prod", "2", NOW)
    assert soak.shortfall(cfg, model, "prod", "1", NOW).endswith(
        "does not serve in staging now (it serves 2); its time there is not recorded")


@pytest.mark.parametrize("text, seconds", [("30m", 1800), ("1h30m", 5400), ("2d", 172800), ("45s", 45),
                                           ("1h", 3600), ("", None), ("30", None), ("1.5h", None), ("m", None),
                                           ("30 m", None), ("1m1h", None), (30, None)])
def test_durations(text, seconds):
    assert parse_duration(text) == seconds
