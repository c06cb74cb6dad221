"""Soak (`environments.<env>.soak`) holds back the next stage, manual and automatic; bad soak and PromQL input.

Real parts: one `mlflow server` per module with trained wine versions, a bare Git remote on disk, the
CLI as a subprocess (`promote` by hand, `reconcile` as the automatic trigger), the real promtool for
PromQL at load. Time passing is played by a plain Git commit that backdates staging's
`gitops-tool.io/deployed-at` annotation at the remote's tip, as a later clock would see it.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone

import pytest
import yaml

from gitops_tool.config import load_config_text
from gitops_tool.errors import GitopsError
from tests.promotion_fixtures import WINE, make_repo, registry, trailers_of  # noqa: F401

pytestmark = pytest.mark.slow

STAGING = "  staging:\n    namespace: models-staging\n"
DEPLOYED_AT = "gitops-tool.io/deployed-at"


def _ok(res):
    assert res.returncode == 0, f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    return res


def _with_staging(extra: str):
    return lambda text: text.replace(STAGING, STAGING + extra)


@pytest.fixture
def soak_repo(tmp_path, registry):
    """staging soaks 30m: prod (whose chain feeds from staging) waits that long after staging took a version."""
    repo = make_repo(tmp_path, registry.url, edit_config=_with_staging("    soak: 30m\n"))
    _ok(repo.promote(f"{WINE}/{registry.v1}", "--env", "staging"))
    repo.sync()
    return repo


def test_soak_blocks_a_manual_promotion_until_forced_with_a_reason(soak_repo, registry):
    repo, v1 = soak_repo, registry.v1
    stamp = yaml.safe_load(repo.release("staging", f"{WINE}.yaml").read_text())["metadata"]["annotations"][DEPLOYED_AT]
    assert abs(datetime.now(timezone.utc) - datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=timezone.utc)) < timedelta(minutes=5)
    before = repo.snapshot()
    res = repo.promote(f"{WINE}/{v1}", "--env", "prod")
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"{WINE} cannot enter prod yet: soak 30m in staging: {WINE} version {v1} has served there" in res.stderr
    assert "to go" in res.stderr and "--force --reason" in res.stderr
    blocked = json.loads({t["key"]: t["value"] for t in registry.get_version(v1)["tags"]}["gitops.prod"])
    assert blocked["state"] == "soak_blocked" and "soak 30m in staging" in blocked["reason"]
    registry.set_version_tag(v1, "gitops.prod", "{}")  # so the bad input below is seen to write nothing
    res = repo.promote(f"{WINE}/{v1}", "--env", "prod", "--force")
    assert res.returncode == 1 and "needs --reason" in res.stderr, res.stderr
    assert repo.snapshot() == before
    assert {t["key"]: t["value"] for t in registry.get_version(v1)["tags"]}["gitops.prod"] == "{}"

    out = json.loads(_ok(repo.promote(f"{WINE}/{v1}", "--env", "prod", "--force", "--reason", "incident 42 fix",
                                      "-o", "json")).stdout)
    step = next(s for s in out["steps"] if s["name"] == "soak+verify")
    assert step["detail"].startswith("soak overridden (soak 30m in staging")
    repo.sync()
    assert trailers_of(repo.root)["Forced"] == "incident 42 fix"


def test_soak_makes_reconcile_wait_then_promote(soak_repo, registry):
    repo, v1 = soak_repo, registry.v1
    registry.set_alias("challenger", v1)
    registry.set_alias("champion", v1)
    head = repo.remote_head()
    items = json.loads(_ok(repo.cli("reconcile", "-o", "json")).stdout)["items"]
    prod = next(i for i in items if i["env"] == "prod")
    assert prod["action"] == "skipped" and prod["detail"].startswith(f"soaking: soak 30m in staging: {WINE} "
                                                                      f"version {v1} has served there")
    # The receiver's trigger takes the same path: skipped, exit 0, no commit.
    out = json.loads(_ok(repo.promote(f"{WINE}@champion", "--trigger", "webhook", "-o", "json")).stdout)
    assert out["skipped"].startswith(f"soaking: soak 30m in staging: {WINE} version {v1}") and out["commit"] is None
    assert repo.remote_head() == head

    # 31 minutes later, as far as the files at the tip are concerned.
    path = repo.release("staging", f"{WINE}.yaml")
    old = (datetime.now(timezone.utc) - timedelta(minutes=31)).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = path.read_text()
    stamp = yaml.safe_load(text)["metadata"]["annotations"][DEPLOYED_AT]
    path.write_text(text.replace(stamp, old))
    repo.commit_and_push("staging: served 31 minutes")
    items = json.loads(_ok(repo.cli("reconcile", "-o", "json")).stdout)["items"]
    prod = next(i for i in items if i["env"] == "prod")
    assert prod["action"] == "promoted", items
    repo.sync()
    assert trailers_of(repo.root)["Trigger"] == "reconcile"


def _config(extra_staging: str) -> str:
    from importlib import resources

    text = resources.files("gitops_tool.templates").joinpath("gitops.yaml").read_text()
    return _with_staging(extra_staging)(text)


@pytest.mark.parametrize("value", ["30 minutes", "'30'", "1.5h", "m30", "''"])
def test_a_soak_that_is_not_a_duration_is_a_load_error_naming_line_and_field(value):
    text = _config(f"    soak: {value}\n")
    line = text.splitlines().index(f"    soak: {value}") + 1
    with pytest.raises(GitopsError) as exc:
        load_config_text(text)
    assert f"gitops.yaml:{line} environments.staging.soak" in str(exc.value), str(exc.value)


def test_a_soak_duration_loads_as_seconds():
    cfg = load_config_text(_config("    soak: 1h30m\n"))
    assert cfg.environments["staging"].soak_seconds == 5400 and cfg.environments["prod"].soak_seconds is None


VERIFY = """    verify:
      prometheus_url: http://127.0.0.1:9
      checks:
        - name: error-rate
          query: 'sum(rate(flask_http_request_total{{status=~"5.."}}[$window]))'
          max: 0.05
        - name: latency
          query: '{query}'
          max: 0.5
          window: 2m
"""


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian package prometheus) is not installed")
def test_promql_that_does_not_parse_is_a_load_error_naming_the_field(tmp_path):
    text = _config(VERIFY.format(query="histogram_quantile(0.99, sum(rate(x_bucket[$window])) by (le)"))
    line = next(i for i, t in enumerate(text.splitlines(), 1) if "histogram_quantile" in t)
    with pytest.raises(GitopsError) as exc:
        load_config_text(text)
    message = str(exc.value)
    assert f"gitops.yaml:{line} environments.staging.verify.checks.1.query: PromQL does not parse" in message
    assert "unclosed left parenthesis" in message, message

    good = load_config_text(_config(VERIFY.format(query="histogram_quantile(0.99, sum(rate(x_bucket[$window])) by (le))")))
    checks = good.environments["staging"].verify.checks
    assert [(c.name, c.window_seconds) for c in checks] == [("error-rate", 300), ("latency", 120)]

    # Through the CLI: exit 1, the same message.
    from tests.conftest import run_cli

    (tmp_path / "gitops.yaml").write_text(text)
    res = run_cli("validate", cwd=tmp_path)
    assert res.returncode == 1 and "environments.staging.verify.checks.1.query: PromQL does not parse" in res.stderr
