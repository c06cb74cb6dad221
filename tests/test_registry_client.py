"""RegistryClient, model refs and LocalMlflowServer against a real ``mlflow server``.

One real MLflow 3.x server (sqlite, 1 worker) and two really trained wine versions are
shared by the module. Stand-ins, used only where a real MLflow cannot produce the case:
``RecordingServer`` (tests/mlflow_harness.py), a tiny loopback http.server that plays a
registry answering 503/404/HTML, recording headers for the auth checks, or a version
still PENDING_REGISTRATION.
"""

from __future__ import annotations

import base64
import json
import os
import time

import pytest

from gitops_tool.errors import GitopsError
from gitops_tool.mlflow_local import LocalMlflowServer, free_port, group_members
from gitops_tool.registry.client import ModelVersion, RegistryClient
from gitops_tool.registry.refs import ModelRef, parse_ref, resolve_tracking_uri
from tests.mlflow_harness import (
    RecordingServer,
    process_alive,
    seeded_wine_server,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    with seeded_wine_server(tmp_path_factory) as server_and_wine:
        yield server_and_wine


@pytest.fixture(scope="module")
def mlflow_server(seeded):
    return seeded[0]


@pytest.fixture(scope="module")
def wine(seeded):
    return seeded[1]


@pytest.fixture
def client(mlflow_server, monkeypatch):
    for var in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
        monkeypatch.delenv(var, raising=False)
    with RegistryClient(mlflow_server.url, retries=1, backoff=0.05) as c:
        yield c


def _json(status: int, payload: dict) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": "application/json"}, json.dumps(payload).encode()


# -- refs --------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, expected",
    [
        ("wine-classifier@champion", ModelRef("wine-classifier", alias="champion")),
        ("wine-classifier/3", ModelRef("wine-classifier", version="3")),
        ("models:/wine-classifier@challenger", ModelRef("wine-classifier", alias="challenger")),
        ("models:/wine.v2/12", ModelRef("wine.v2", version="12")),
    ],
)
def test_parse_ref_accepts_the_four_forms(text, expected):
    ref = parse_ref(text)
    assert ref == expected
    assert parse_ref(str(ref)) == ref
    assert ref.uri == "models:/" + str(ref)


@pytest.mark.parametrize(
    "text", ["wine-classifier", "wine@", "@champion", "wine/0", "wine/-1", "wine/v2",
             "wine/1/2", "models:/", "", "wine@champ ion"],
)
def test_parse_ref_rejects_bad_syntax_naming_text_and_forms(text):
    with pytest.raises(GitopsError) as err:
        parse_ref(text)
    assert repr(text) in str(err.value)
    assert "MODEL@ALIAS" in str(err.value)


def test_tracking_uri_order_is_cli_env_config(monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://env:5000")
    assert resolve_tracking_uri("http://cli:5000/", "http://cfg:5000") == "http://cli:5000"
    assert resolve_tracking_uri(None, "http://cfg:5000") == "http://env:5000"
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert resolve_tracking_uri(None, "http://cfg:5000") == "http://cfg:5000"
    with pytest.raises(GitopsError) as err:
        resolve_tracking_uri(None, None)
    assert "MLFLOW_TRACKING_URI" in str(err.value) and err.value.hint


def test_non_http_tracking_uri_is_rejected():
    with pytest.raises(GitopsError, match="sqlite:///x.db"):
        RegistryClient("sqlite:///x.db")


# -- real registry -----------------------------------------------------------


def test_resolve_by_alias_records_version_run_source_tags(client, wine):
    client.set_alias(wine.name, "champion", wine.v1["version"])
    mv = client.resolve(parse_ref(f"{wine.name}@champion"))
    assert isinstance(mv, ModelVersion)
    assert (mv.name, mv.version, mv.status) == (wine.name, wine.v1["version"], "READY")
    assert mv.run_id == wine.v1["run_id"]
    assert mv.source and mv.source.startswith("models:/m-")  # MLflow 3 logged-model source
    assert mv.tags == {"trained_by": "harness", "flavor": "v1"}
    assert "champion" in mv.aliases and mv.creation_timestamp > 0
    assert client.get_model_aliases(wine.name)["champion"] == wine.v1["version"]


def test_resolve_by_version_and_alias_move(client, wine):
    mv = client.resolve(parse_ref(f"models:/{wine.name}/{wine.v2['version']}"))
    assert mv.run_id == wine.v2["run_id"] and mv.tags["flavor"] == "v2"
    client.set_alias(wine.name, "challenger", wine.v2["version"])
    assert client.get_version_by_alias(wine.name, "challenger").version == wine.v2["version"]
    client.delete_alias(wine.name, "challenger")
    assert "challenger" not in client.get_model_aliases(wine.name)


def test_run_metrics_are_the_real_training_metrics(client, wine):
    m1, m2 = client.get_run_metrics(wine.v1["run_id"]), client.get_run_metrics(wine.v2["run_id"])
    assert m1 == pytest.approx(wine.v1["metrics"]) and m2 == pytest.approx(wine.v2["metrics"])
    assert m2["accuracy"] > m1["accuracy"] > 0.8


def test_download_uri_points_at_served_artifacts(client, wine):
    uri = client.get_download_uri(wine.name, wine.v2["version"])
    assert uri.startswith("mlflow-artifacts:/") and uri.endswith("/artifacts")


@pytest.mark.parametrize(
    "ref, names",
    [
        ("no-such-model@champion", ["no-such-model", "champion"]),
        ("wine-classifier@no-such-alias", ["wine-classifier", "no-such-alias"]),
        ("wine-classifier/999", ["wine-classifier", "999"]),
        ("no-such-model/1", ["no-such-model", "version 1"]),
    ],
)
def test_unknown_model_alias_version_are_gitops_errors(client, wine, ref, names):
    before = client.attempts
    with pytest.raises(GitopsError) as err:
        client.resolve(parse_ref(ref))
    assert all(n in str(err.value) for n in names), str(err.value)
    assert "not found" in str(err.value) and not err.value.retryable
    assert client.attempts - before == 1  # 4xx are not retried


def test_webhooks_create_list_update_round_trip(client):
    hook = client.create_webhook(
        "gitops-test", "http://127.0.0.1:9/hook",
        [("model_version_alias", "created"), ("MODEL_VERSION_ALIAS", "DELETED")],
        secret="s3cret", description="round trip",
    )
    assert hook["webhook_id"] and hook["status"] == "ACTIVE"
    assert {"entity": "MODEL_VERSION_ALIAS", "action": "CREATED"} in hook["events"]
    assert "secret" not in hook  # stored encrypted, never echoed
    listed = {h["webhook_id"]: h for h in client.list_webhooks()}
    assert listed[hook["webhook_id"]]["url"] == "http://127.0.0.1:9/hook"
    updated = client.update_webhook(hook["webhook_id"], url="http://127.0.0.1:10/hook",
                                    status="disabled", events=["model_version_alias.created"])
    assert updated["status"] == "DISABLED" and updated["url"] == "http://127.0.0.1:10/hook"
    assert updated["events"] == [{"entity": "MODEL_VERSION_ALIAS", "action": "CREATED"}]
    assert {h["webhook_id"]: h for h in client.list_webhooks()}[hook["webhook_id"]] == updated
    with pytest.raises(GitopsError, match="headers"):
        client.update_webhook(hook["webhook_id"], headers={"x": "y"})
    client.delete_webhook(hook["webhook_id"])
    with pytest.raises(GitopsError, match=hook["webhook_id"]):
        client.update_webhook(hook["webhook_id"], name="gone")


def test_local_server_delivers_webhooks_to_loopback(client, wine):
    """The server's env (http scheme, private IPs, 1 s cache) lets a loopback receiver get
    a signed alias event; the receiver is a RecordingServer."""
    with RecordingServer(lambda rec: _json(200, {})) as receiver:
        hook = client.create_webhook("loopback", receiver.url + "/hook",
                                     [("model_version_alias", "created")], secret="k")
        time.sleep(1.2)  # the server caches "no webhook for this event" for 1 s (TTL)
        client.set_alias(wine.name, "staging", wine.v2["version"])
        deadline = time.monotonic() + 15
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.1)
        client.delete_webhook(hook["webhook_id"])
    assert receiver.requests, "no webhook delivery within 15 s"
    delivery = receiver.requests[0]
    assert delivery.headers["X-MLflow-Signature"].startswith("v1,")
    assert json.loads(delivery.body)["data"] == {
        "name": wine.name, "alias": "staging", "version": wine.v2["version"]}


# -- failure modes (stand-ins where MLflow cannot produce them) ----------------


def test_unreachable_registry_gives_up_after_bounded_retries():
    uri = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    c = RegistryClient(uri, retries=2, backoff=0.05, timeout=2)
    start = time.monotonic()
    with pytest.raises(GitopsError) as err:
        c.get_version_by_alias("wine-classifier", "champion")
    assert c.attempts == 3 and time.monotonic() - start < 3
    assert uri in str(err.value) and "3 attempts" in str(err.value)
    assert "wine-classifier" in str(err.value) and err.value.retryable


def test_registry_answering_503_is_retried_then_reported():
    """Stand-in: a loopback http.server answering 503 plays a failing registry."""
    with RecordingServer(lambda rec: (503, {}, b"unavailable")) as fake:
        c = RegistryClient(fake.url, retries=2, backoff=0.01)
        with pytest.raises(GitopsError) as err:
            c.get_version("wine-classifier", 1)
    assert len(fake.requests) == 3
    assert fake.url in str(err.value) and "503" in str(err.value) and err.value.retryable


def test_transient_5xx_then_success():
    """Stand-in: the fake registry fails once with 502, then answers like MLflow."""
    version = {"name": "m", "version": "4", "status": "READY", "run_id": "r", "source": "s"}
    answers = iter([(502, {}, b""), _json(200, {"model_version": version})])
    with RecordingServer(lambda rec: next(answers)) as fake:
        mv = RegistryClient(fake.url, retries=2, backoff=0.01).get_version("m", 4)
    assert mv.version == "4" and len(fake.requests) == 2


def test_4xx_and_non_json_are_not_retried():
    """Stand-in: a fake registry answering 404 with MLflow's error JSON, then HTML pages."""
    answers = iter([
        _json(404, {"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "nope"}),
        (200, {"Content-Type": "text/html"}, b"<html>login</html>"),
        (404, {"Content-Type": "text/html"}, b"<html>no such page</html>"),
    ])
    with RecordingServer(lambda rec: next(answers)) as fake:
        c = RegistryClient(fake.url, retries=3, backoff=0.01)
        with pytest.raises(GitopsError, match="model 'm' version 7 not found"):
            c.get_version("m", 7)
        with pytest.raises(GitopsError, match="non-JSON"):
            c.get_version("m", 7)
        with pytest.raises(GitopsError, match="has no /api/2.0/mlflow/model-versions/get"):
            c.get_version("m", 7)
    assert len(fake.requests) == 3


def test_pending_version_is_not_resolved():
    """Stand-in: a fake registry reports a version still PENDING_REGISTRATION."""
    version = {"name": "m", "version": "2", "status": "PENDING_REGISTRATION"}
    with RecordingServer(lambda rec: _json(200, {"model_version": version})) as fake:
        with pytest.raises(GitopsError, match="'m' version 2 .*PENDING_REGISTRATION"):
            RegistryClient(fake.url).resolve(parse_ref("m/2"))


def test_basic_auth_and_token_env_vars_are_sent(monkeypatch):
    """Stand-in: a loopback http.server records the Authorization header."""
    version = {"name": "m", "version": "1", "status": "READY"}
    with RecordingServer(lambda rec: _json(200, {"model_version": version})) as fake:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "alice")
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "pa:ss")
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "ignored-when-basic-auth-is-set")
        RegistryClient(fake.url).get_version_by_alias("m", "champion")
        monkeypatch.delenv("MLFLOW_TRACKING_USERNAME")
        RegistryClient(fake.url).get_version_by_alias("m", "champion")
    basic = "Basic " + base64.b64encode(b"alice:pa:ss").decode()
    assert fake.requests[0].headers["Authorization"] == basic
    assert fake.requests[0].path == "/api/2.0/mlflow/registered-models/alias?name=m&alias=champion"
    assert fake.requests[1].headers["Authorization"] == "Bearer ignored-when-basic-auth-is-set"


def test_tls_env_vars_configure_verification(monkeypatch, tmp_path):
    monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(tmp_path / "ca.pem"))
    assert RegistryClient("https://mlflow.example").session.verify == str(tmp_path / "ca.pem")
    monkeypatch.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
    assert RegistryClient("https://mlflow.example").session.verify is False


# -- LocalMlflowServer lifecycle ----------------------------------------------


def test_stop_leaves_no_process_behind(tmp_path):
    server = LocalMlflowServer(tmp_path / "lifecycle").start(timeout=90)
    pgid = server.pgid
    members = group_members(pgid)
    assert len(members) >= 2  # the mlflow CLI and its uvicorn child
    server.stop()
    assert group_members(pgid) == [] and not any(process_alive(p) for p in members)
    with pytest.raises(ProcessLookupError):
        os.killpg(pgid, 0)
    server.stop()  # idempotent


def test_start_failure_reports_log_tail(tmp_path):
    server = LocalMlflowServer(tmp_path / "bad", backend_uri="bogus-scheme://nowhere")
    with pytest.raises(GitopsError) as err:
        server.start(timeout=60)
    assert str(server.port) in str(err.value) and "bogus-scheme" in str(err.value)
    assert server.proc is None
