"""Verification on live metrics: a real Prometheus scraping a real server decides whether a canary completes.

Real parts: Debian's /usr/bin/prometheus (started here on a free port, temp config and storage, 1 s
scrape interval) scraping a real `mlflow server --expose-prometheus` process, the module's registry of
record with trained wine versions, which serves real HTTP traffic (200s, and 404s when the test makes
errors); a bare Git remote on disk; the CLI as a subprocess. The scraped process is MLflow's server,
not a KServe predictor (none can run here): its `mlflow_http_request_total{status}` counter is the
real series the error-rate check reads, over PromQL that Prometheus evaluates.
"""

from __future__ import annotations

import json

import subprocess
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests
import yaml

from gitops_tool.mlflow_local import LocalMlflowServer, free_port
from tests.mlflow_harness import register_wine_versions
from tests.promotion_fixtures import API, WINE, Registry, make_repo, trailers_of

pytestmark = pytest.mark.slow

PROMETHEUS = "/usr/bin/prometheus"
NAMESPACE = "models-prod"
ERROR_RATE = ('(sum(rate(mlflow_http_request_total{namespace="$namespace",status=~"4..|5.."}[$window])) '
              'or vector(0)) / sum(rate(mlflow_http_request_total{namespace="$namespace"}[$window]))')
VERIFY = f"""    verify:
      on_fail: abort_and_move_alias
      checks:
        - name: error-rate
          query: '{ERROR_RATE}'
          max: 0.05
          window: 15s
"""


class PrometheusMlflow(LocalMlflowServer):
    def command(self) -> list[str]:
        return [*super().command(), "--expose-prometheus", str(self.workdir / "prometheus")]


class Traffic:
    """Requests to the scraped server from a background thread: OK ones always, 404s while `errors()` runs."""

    def __init__(self, url: str):
        self.url, self.failing, self.stop = url, threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        session = requests.Session()
        while not self.stop.is_set():
            calls = [WINE] + ["no-such-model"] * (3 if self.failing.is_set() else 0)
            for name in calls:
                try:
                    session.get(f"{self.url}{API}/registered-models/get", params={"name": name}, timeout=5)
                except requests.RequestException:
                    pass
            time.sleep(0.2)

    @contextmanager
    def errors(self):
        self.failing.set()
        try:
            yield
        finally:
            self.failing.clear()


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    if not Path(PROMETHEUS).is_file():
        pytest.skip(f"{PROMETHEUS} is missing (Debian package prometheus; .ci/run installs it)")
    pytest.importorskip("prometheus_flask_exporter", reason="mlflow --expose-prometheus needs prometheus-flask-exporter")
    work = tmp_path_factory.mktemp("live")
    (work / "prometheus").mkdir()
    mlflow = PrometheusMlflow(work).start(timeout=90)
    prom = None
    traffic = None
    try:
        registry = Registry(mlflow.url, register_wine_versions(mlflow.url))
        port = free_port()
        config = work / "prometheus.yml"
        config.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": "predictor", "metrics_path": "/metrics",
                                "static_configs": [{"targets": [f"127.0.0.1:{mlflow.port}"],
                                                    "labels": {"namespace": NAMESPACE}}]}],
        }))
        log = (work / "prometheus.log").open("wb")
        prom = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={work / 'tsdb'}",
                                 f"--web.listen-address=127.0.0.1:{port}"], stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        _until(lambda: _instant(url, 'up{job="predictor"}') == [1.0], 60, "Prometheus scraping the server")
        traffic = Traffic(mlflow.url)
        yield registry, url, traffic
    finally:
        if traffic:
            traffic.stop.set()
        if prom:
            prom.terminate()
            prom.wait(timeout=30)
        mlflow.stop()


def _instant(url: str, query: str) -> list[float]:
    try:
        body = requests.get(f"{url}/api/v1/query", params={"query": query}, timeout=5).json()
    except (requests.RequestException, ValueError):
        return []
    return [float(r["value"][1]) for r in body.get("data", {}).get("result", [])]


def _until(check, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.5)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def _ok(res):
    assert res.returncode == 0, f"exit {res.returncode}\nstdout:\n{res.stdout}\nstderr:\n{res.stderr}"
    return res


def _error_rate(url: str) -> list[float]:
    """The check's expression at its worst over the check's window (what --complete will look at)."""
    expr = ERROR_RATE.replace("$namespace", NAMESPACE).replace("$window", "15s")
    return _instant(url, f"max_over_time(({expr})[15s:1s])")


def test_a_failed_verification_on_live_metrics_aborts_the_canary_and_moves_the_alias_back(live, tmp_path):
    registry, prom_url, traffic = live
    v1, v2 = registry.v1, registry.v2
    v3 = registry.create_version_like(WINE, v2)["version"]
    repo = make_repo(tmp_path, registry.url, edit_config=lambda t: t.replace(
        "  prod:\n    namespace: models-prod\n", "  prod:\n    namespace: models-prod\n" + VERIFY))
    env = repo.env(GITOPS_TOOL_PROMETHEUS_URL=prom_url)
    for version in (v1, v2, v3):
        _ok(repo.promote(f"{WINE}/{version}", "--env", "staging", env=env))
    _ok(repo.promote(f"{WINE}/{v1}", "--env", "prod", env=env))

    # Healthy traffic only: the check holds over its whole window, and the canary completes.
    _until(lambda: (rate := _error_rate(prom_url)) and max(rate) == 0.0, 90, "a clean 15s window")
    _ok(repo.promote(f"{WINE}/{v2}", "--env", "prod", "--canary", "10", env=env))
    _ok(repo.promote("--complete", WINE, "--env", "prod", env=env))
    repo.sync()
    assert trailers_of(repo.root)["Trigger"] == "canary-complete"

    registry.set_alias("champion", v3)
    _ok(repo.promote(f"{WINE}@champion", "--canary", "10", env=env))
    with traffic.errors():
        _until(lambda: (rate := _error_rate(prom_url)) and max(rate) > 0.05, 90, "the error rate to rise")
        res = repo.promote("--complete", WINE, "--env", "prod", env=env)
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"canary of version {v3} not completed: verification failed: error-rate: " in res.stderr
    assert "needs <= 0.05" in res.stderr and f"moved @champion back to version {v2}" in res.stderr
    repo.sync()
    trailers = trailers_of(repo.root)
    assert (trailers["Trigger"], trailers["Model-Version"], trailers["Previous-Version"]) == ("canary-abort", v2, v3)
    assert trailers["Hold"].startswith(f"canary of {v3} aborted: verification failed: error-rate: ")
    annotations = yaml.safe_load(repo.release("prod", f"{WINE}.yaml").read_text())["metadata"]["annotations"]
    assert annotations["gitops-tool.io/model-version"] == v2
    assert requests.get(f"{registry.url}{API}/registered-models/alias",
                        params={"name": WINE, "alias": "champion"}, timeout=10).json()["model_version"][
        "version"] == v2
    # The version page says why (a tag read back from the real MLflow).
    tags = {t["key"]: t["value"] for t in registry.get_version(v3).get("tags", [])}
    failed = json.loads(tags["gitops.prod"])
    assert failed["state"] == "verification_failed" and failed["reason"].startswith("error-rate: ")
    assert failed["commit"] == repo.remote_head()


def test_prometheus_unreachable_fails_the_verification_never_passes_it(live, tmp_path):
    """No answer is not a pass: the canary is aborted, with the reason."""
    registry, _, _ = live
    v1, v2 = registry.v1, registry.v2
    repo = make_repo(tmp_path, registry.url, edit_config=lambda t: t.replace(
        "  prod:\n    namespace: models-prod\n", "  prod:\n    namespace: models-prod\n" + VERIFY.replace(
            "abort_and_move_alias", "abort")))
    env = repo.env(GITOPS_TOOL_PROMETHEUS_URL=f"http://127.0.0.1:{free_port()}")
    for version in (v1, v2):
        _ok(repo.promote(f"{WINE}/{version}", "--env", "staging", env=env))
    _ok(repo.promote(f"{WINE}/{v1}", "--env", "prod", env=env))
    _ok(repo.promote(f"{WINE}/{v2}", "--env", "prod", "--canary", "5", env=env))
    res = repo.promote("--complete", WINE, "--env", "prod", env=env)
    assert res.returncode == 1 and "did not answer" in res.stderr and "moved" not in res.stderr, res.stderr
    repo.sync()
    assert trailers_of(repo.root)["Trigger"] == "canary-abort"


def test_the_upstream_verify_checks_open_the_next_stage(live, tmp_path):
    """staging's checks guard prod (its chain's next stage): here they see no series for staging's namespace
    on the real Prometheus, and no data never passes; --force --reason overrides and is recorded."""
    registry, prom_url, _ = live
    v1 = registry.v1
    repo = make_repo(tmp_path, registry.url, edit_config=lambda t: t.replace(
        "  staging:\n    namespace: models-staging\n", "  staging:\n    namespace: models-staging\n" + VERIFY))
    env = repo.env(GITOPS_TOOL_PROMETHEUS_URL=prom_url)
    _ok(repo.promote(f"{WINE}/{v1}", "--env", "staging", env=env))
    before = repo.snapshot()
    res = repo.promote(f"{WINE}/{v1}", "--env", "prod", env=env)
    assert res.returncode == 1, res.stdout + res.stderr
    assert f"{WINE} cannot enter prod yet: verify staging: error-rate: no data over the last 15s" in res.stderr
    assert repo.snapshot() == before
    _ok(repo.promote(f"{WINE}/{v1}", "--env", "prod", "--force", "--reason", "staging has no monitoring yet",
                     env=env))
    repo.sync()
    assert trailers_of(repo.root)["Forced"] == "staging has no monitoring yet"
