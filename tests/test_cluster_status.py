"""`gitops-tool wait` and `status --cluster` through the real kubernetes client and real HTTP.

There is no cluster here: a loopback HTTP server stands in for the Kubernetes API server of the
cluster Argo CD runs on. It answers the exact REST paths the client requests (Argo CD Applications,
KServe InferenceServices) with the JSON in tests/fixtures/cluster/, and can change its answer over
time. The client finds it through a kubeconfig written in tmp (server: http://127.0.0.1:PORT, no auth).

Two topologies: prod moved in-cluster (its InferenceService is read from the same API), and the
starter's prod on its own cluster (only the Application's status.resources says how it is).
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from gitops_tool.cli import cluster_commands
from gitops_tool.errors import GitopsError
from gitops_tool.project import generate

from tests.conftest import run_cli, write_release

FIXTURES = Path(__file__).parent / "fixtures" / "cluster"
DIGEST = "d" * 64
IMAGE = f"registry.example.com/ml/wine-classifier@sha256:{DIGEST}"
APP_PATH = "/apis/argoproj.io/v1alpha1/namespaces/argocd/applications/mlflow-platform-{env}"
ISVC_PATH = "/apis/serving.kserve.io/v1beta1/namespaces/models-{env}/inferenceservices/wine-classifier"
IN_CLUSTER = "https://kubernetes.default.svc"
PROD_CLUSTER = "https://prod.k8s.example.com"  # argocd.clusters.prod in the starter


class FakeApiServer:
    """GET path -> a list of (status, JSON) answers, served in turn; the last one repeats."""

    def __init__(self) -> None:
        self.routes: dict[str, list[tuple[int, str]]] = {}
        self.requests: list[str] = []
        self.lock = threading.Lock()

    def set(self, path: str, *answers: tuple[int, str]) -> None:
        with self.lock:
            self.routes[path] = list(answers)

    def _answer(self, path: str) -> tuple[int, str]:
        with self.lock:
            self.requests.append(path)
            answers = self.routes.get(path)
            if not answers:
                return 404, _fixture("not-found.json", NAME=path.rsplit("/", 1)[-1], KIND="resource", GROUP="")
            return answers.pop(0) if len(answers) > 1 else answers[0]

    @contextlib.contextmanager
    def running(self) -> Iterator[str]:
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                status, body = fake._answer(self.path.split("?", 1)[0])
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: object) -> None:
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}"
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)

    def count(self, path: str) -> int:
        return sum(1 for p in self.requests if p == path)


def _fixture(name: str, **values: str) -> str:
    text = (FIXTURES / name).read_text()
    for key, value in values.items():
        text = text.replace(f"__{key}__", value)
    assert "__" not in text.replace("__meta", ""), f"unfilled placeholder in {name}"
    return text


def _checkout(project: Path) -> dict[str, str]:
    """A Git checkout of the tree with version 4 promoted to prod in its own commit."""
    git = ["-c", "user.name=t", "-c", "user.email=t@example.com"]

    def run(*args: str) -> str:
        return subprocess.run(["git", "-C", str(project), *git, *args], check=True, capture_output=True,
                              text=True).stdout.strip()

    run("init", "-q", "-b", "main")
    run("add", "-A")
    run("commit", "-qm", "init")
    old = run("rev-parse", "HEAD")
    write_release(project, "prod", "4", image=IMAGE)
    run("add", "-A")
    run("commit", "-qm", "promote wine-classifier 4 to prod")
    promoted = run("rev-parse", "HEAD")
    (project / "NOTES.md").write_text("a later commit outside environments/\n")
    run("add", "NOTES.md")
    run("commit", "-qm", "notes")
    return {"root": str(project), "old": old, "promoted": promoted, "head": run("rev-parse", "HEAD")}


@pytest.fixture
def checkout(project: Path) -> dict[str, str]:
    """prod moved onto Argo CD's own cluster: its InferenceService is read from the same API."""
    config = project / "gitops.yaml"
    text = config.read_text()
    assert text.count("    cluster: prod\n") == 1
    config.write_text(text.replace("    cluster: prod\n", "    cluster: in-cluster\n"))
    generate(config)
    return _checkout(project)


@pytest.fixture
def remote_checkout(project: Path) -> dict[str, str]:
    """The starter as `init` writes it: prod on the `prod` cluster, not the one Argo CD runs on."""
    return _checkout(project)


@pytest.fixture
def api(tmp_path: Path, monkeypatch) -> Iterator[FakeApiServer]:
    fake = FakeApiServer()
    with fake.running() as url:
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "standin",
            "clusters": [{"name": "standin", "cluster": {"server": url}}],
            "users": [{"name": "nobody", "user": {}}],
            "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "nobody"}}],
        }))
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        fake.kubeconfig = str(kubeconfig)
        yield fake


def app(state: str, revision: str, old: str = "0" * 40, server: str = IN_CLUSTER) -> tuple[int, str]:
    return 200, _fixture(f"application-{state}.json", REVISION=revision, OLD_REVISION=old, DIGEST=DIGEST,
                         SERVER=server)


def isvc(state: str, version: str = "4") -> tuple[int, str]:
    return 200, _fixture(f"inferenceservice-{state}.json", VERSION=version, DIGEST=DIGEST)


def wait(checkout, **kw) -> int:
    args = {"env": "prod", "model": None, "version": None, "timeout": 5.0, "interval": 0.05,
            "config": str(Path(checkout["root"]) / "gitops.yaml"), "context": None, "kubeconfig": None,
            "output": "text"} | kw
    return cluster_commands.wait(**args)


def test_live_exits_0_via_the_cli(api, checkout):
    """Synced+Healthy at HEAD (which contains the promotion commit) and a Ready ISVC at version 4."""
    api.set(APP_PATH.format(env="prod"), app("synced-healthy", checkout["head"]))
    api.set(ISVC_PATH.format(env="prod"), isvc("ready"))
    res = run_cli("wait", "--env", "prod", "--version", "4", "--timeout", "5", cwd=Path(checkout["root"]),
                  env=os.environ | {"KUBECONFIG": api.kubeconfig})
    assert res.returncode == 0, res.stderr
    assert "prod is live" in res.stdout and checkout["head"][:12] in res.stdout
    assert api.requests == [APP_PATH.format(env="prod"), ISVC_PATH.format(env="prod")]


def test_polls_through_outofsync_and_progressing_until_live(api, checkout, capsys):
    api.set(APP_PATH.format(env="prod"), app("outofsync", checkout["promoted"], old=checkout["old"]),
            app("outofsync", checkout["promoted"], old=checkout["old"]),
            app("progressing", checkout["promoted"]), app("synced-healthy", checkout["promoted"]))
    api.set(ISVC_PATH.format(env="prod"), isvc("not-ready", "3"), isvc("not-ready", "4"), isvc("ready"))
    assert wait(checkout) == 0
    assert api.count(APP_PATH.format(env="prod")) == 4
    err = capsys.readouterr().err
    assert "is OutOfSync synced" in err and f"not yet {checkout['promoted'][:12]}" in err
    assert "health is Progressing" in err
    assert "annotated version 3, want 4" in err and "not Ready (False: MinimumReplicasUnavailable)" in err


def test_timeout_exits_1_naming_what_is_missing(api, checkout, capsys):
    api.set(APP_PATH.format(env="prod"), app("synced-healthy", checkout["old"]))  # Argo has not seen it yet
    api.set(ISVC_PATH.format(env="prod"), isvc("not-ready"))
    assert wait(checkout, timeout=0.3) == 1
    err = capsys.readouterr().err
    assert "prod is not live after 0.3 s" in err
    assert f"revision {checkout['old'][:12]}, not yet {checkout['promoted'][:12]}" in err
    assert "InferenceService models-prod/wine-classifier is not Ready" in err
    assert api.count(APP_PATH.format(env="prod")) >= 2  # it polled


def test_wrong_version_and_failed_sync_are_named(api, checkout, capsys):
    api.set(APP_PATH.format(env="prod"), app("sync-failed", checkout["head"]))
    api.set(ISVC_PATH.format(env="prod"), isvc("ready", "3"))
    assert wait(checkout, timeout=0.1, version="5") == 1
    err = capsys.readouterr().err
    assert "is OutOfSync synced: one or more objects failed to apply" in err
    assert "health is Degraded" in err and "annotated version 3, want 5" in err


def test_application_missing_is_a_clear_exit_1(api, checkout):
    res = run_cli("wait", "--env", "prod", "--timeout", "0.2", "--interval", "0.1", cwd=Path(checkout["root"]),
                  env=os.environ | {"KUBECONFIG": api.kubeconfig})
    assert res.returncode == 1
    assert "Argo CD Application argocd/mlflow-platform-prod not found" in res.stderr
    assert "Traceback" not in res.stderr


def test_commit_unknown_to_the_checkout_is_named(api, checkout, capsys):
    api.set(APP_PATH.format(env="prod"), app("synced-healthy", "f" * 40))
    api.set(ISVC_PATH.format(env="prod"), isvc("ready"))
    assert wait(checkout, timeout=0) == 1
    assert "a commit this checkout does not have (git fetch?)" in capsys.readouterr().err


def test_unreachable_api_is_retried_then_reported(tmp_path, checkout, capsys):
    kubeconfig = tmp_path / "dead-kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "dead",
        "clusters": [{"name": "dead", "cluster": {"server": "http://127.0.0.1:9"}}],
        "users": [{"name": "u", "user": {}}],
        "contexts": [{"name": "dead", "context": {"cluster": "dead", "user": "u"}}]}))
    assert wait(checkout, timeout=0.2, kubeconfig=str(kubeconfig)) == 1
    assert "cannot reach the cluster API at http://127.0.0.1:9" in capsys.readouterr().err


def test_unknown_context_or_missing_kubeconfig_is_an_error(api, checkout):
    with pytest.raises(GitopsError, match="no kubeconfig|context"):
        wait(checkout, context="nope", kubeconfig=str(Path(checkout["root"]) / "missing"))
    with pytest.raises(GitopsError, match="nope"):
        wait(checkout, context="nope")


def test_status_cluster_table_and_json(api, checkout):
    api.set(APP_PATH.format(env="prod"), app("synced-healthy", checkout["head"]))
    api.set(ISVC_PATH.format(env="prod"), isvc("ready"))
    api.set(APP_PATH.format(env="dev"), app("progressing", checkout["old"]))
    env = os.environ | {"KUBECONFIG": api.kubeconfig}
    res = run_cli("status", "--cluster", cwd=Path(checkout["root"]), env=env)
    assert res.returncode == 1  # dev is Progressing and staging's Application is missing
    rows = {line.split()[0]: line.split() for line in res.stdout.splitlines()[1:]}
    assert rows["prod"] == ["prod", "wine-classifier", "4", "Synced", "Healthy", checkout["head"][:12], "True", "4",
                            "yes"]
    assert rows["dev"][:5] == ["dev", "wine-classifier", "-", "Synced", "Progressing"]
    assert rows["staging"][3] == "missing"
    assert "staging: Argo CD Application argocd/mlflow-platform-staging not found" in res.stderr
    doc = json.loads(run_cli("status", "--cluster", "-o", "json", cwd=Path(checkout["root"]), env=env).stdout)
    prod = next(e for e in doc["environments"] if e["env"] == "prod")
    assert prod["live"] and prod["app"]["revision"] == checkout["head"]
    assert prod["isvcs"]["wine-classifier"]["image"] == IMAGE


# --- prod on another cluster: seen through the Application's status.resources -----------------

def _without_isvc(answer: tuple[int, str]) -> tuple[int, str]:
    doc = json.loads(answer[1])
    doc["status"]["resources"] = [r for r in doc["status"]["resources"] if r["kind"] != "InferenceService"]
    return answer[0], json.dumps(doc)


def test_remote_prod_is_live_from_the_application_alone(api, remote_checkout):
    head = remote_checkout["head"]
    api.set(APP_PATH.format(env="prod"), app("synced-healthy", head, server=PROD_CLUSTER))
    api.set(ISVC_PATH.format(env="prod"), isvc("not-ready"))  # a same-named object on Argo's cluster: not prod's
    res = run_cli("wait", "--env", "prod", "--version", "4", "--timeout", "5", cwd=Path(remote_checkout["root"]),
                  env=os.environ | {"KUBECONFIG": api.kubeconfig})
    assert res.returncode == 0, res.stderr
    assert "prod is live" in res.stdout and head[:12] in res.stdout
    assert api.requests == [APP_PATH.format(env="prod")]  # never read prod's objects from Argo CD's cluster


def test_remote_prod_polls_until_argo_reports_the_isvc_healthy(api, remote_checkout, capsys):
    promoted = remote_checkout["promoted"]
    api.set(APP_PATH.format(env="prod"), app("progressing", promoted, server=PROD_CLUSTER),
            app("synced-healthy", promoted, server=PROD_CLUSTER))
    assert wait(remote_checkout) == 0
    assert api.count(APP_PATH.format(env="prod")) == 2
    assert api.count(ISVC_PATH.format(env="prod")) == 0
    err = capsys.readouterr().err
    assert ("InferenceService models-prod/wine-classifier on cluster prod (as Argo CD reports it) is not Ready "
            "(False: Argo CD health Progressing)") in err


def test_remote_prod_at_an_old_revision_has_not_applied_the_version(api, remote_checkout, capsys):
    """Synced and Healthy, but at the commit before the promotion: version 4 is not claimed as live."""
    old = remote_checkout["old"]
    api.set(APP_PATH.format(env="prod"), app("synced-healthy", old, server=PROD_CLUSTER))
    assert wait(remote_checkout, timeout=0) == 1
    err = capsys.readouterr().err
    assert f"revision {old[:12]}, not yet {remote_checkout['promoted'][:12]}" in err
    assert "models-prod/wine-classifier on cluster prod (as Argo CD reports it) has not applied version 4 yet" in err
    doc = json.loads(run_cli("status", "--cluster", "-o", "json", cwd=Path(remote_checkout["root"]),
                             env=os.environ | {"KUBECONFIG": api.kubeconfig}).stdout)
    prod = next(e for e in doc["environments"] if e["env"] == "prod")
    assert not prod["live"] and prod["isvcs"]["wine-classifier"]["version"] is None


def test_remote_prod_without_the_isvc_in_the_application_is_named(api, remote_checkout, capsys):
    api.set(APP_PATH.format(env="prod"), _without_isvc(app("synced-healthy", remote_checkout["head"],
                                                           server=PROD_CLUSTER)))
    assert wait(remote_checkout, timeout=0) == 1
    assert ("InferenceService models-prod/wine-classifier on cluster prod (as Argo CD reports it) not found in the "
            "Application's resources") in capsys.readouterr().err


def test_status_cluster_mixes_in_cluster_and_remote_environments(api, remote_checkout):
    head = remote_checkout["head"]
    api.set(APP_PATH.format(env="prod"), app("synced-healthy", head, server=PROD_CLUSTER))
    api.set(APP_PATH.format(env="dev"), app("synced-healthy", head))
    api.set(APP_PATH.format(env="staging"), app("synced-healthy", head))
    res = run_cli("status", "--cluster", cwd=Path(remote_checkout["root"]),
                  env=os.environ | {"KUBECONFIG": api.kubeconfig})
    assert res.returncode == 0, res.stdout + res.stderr
    rows = {line.split()[0]: line.split() for line in res.stdout.splitlines()[1:]}
    assert rows["prod"] == ["prod", "wine-classifier", "4", "Synced", "Healthy", head[:12], "True", "4", "yes"]
    # dev and staging serve nothing yet: nothing to read from the API but their Applications
    assert rows["dev"] == ["dev", "wine-classifier", "-", "Synced", "Healthy", head[:12], "-", "-", "yes"]
    assert sorted(set(api.requests)) == sorted(APP_PATH.format(env=e) for e in ("dev", "staging", "prod"))
