"""Real-MLflow test harness: one local ``mlflow server`` per module/session, real wine versions.

Plain functions and classes, no fixtures: wire them into a fixture, e.g.

    @pytest.fixture(scope="module")
    def mlflow_server(tmp_path_factory):
        with mlflow_server_for(tmp_path_factory) as server:
            yield server

    @pytest.fixture(scope="module")
    def wine_model(mlflow_server):
        return register_wine_versions(mlflow_server.url)
"""

from __future__ import annotations

import contextlib
import http.server
import json
import shutil
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gitops_tool.mlflow_local import V1_PARAMS, V2_PARAMS, LocalMlflowServer, train_wine_version

WINE_MODEL = "wine-classifier"


@contextlib.contextmanager
def mlflow_server_for(tmp_path_factory: pytest.TempPathFactory, name: str = "mlflow",
                      timeout: float = 90) -> Iterator[LocalMlflowServer]:
    """Start a LocalMlflowServer in a fresh temp dir; always stop it (no process left)."""
    server = LocalMlflowServer(tmp_path_factory.mktemp(name))
    server.start(timeout=timeout)
    try:
        yield server
    finally:
        server.stop(grace=STOP_GRACE)


# A test server's sqlite store is thrown away: no need to wait for uvicorn's graceful drain (~4 s
# per server, ~20 servers a run); whatever is left after this is SIGKILLed.
STOP_GRACE = 1.0


@contextlib.contextmanager
def seeded_wine_server(tmp_path_factory: pytest.TempPathFactory, name: str = "mlflow",
                       timeout: float = 90) -> Iterator[tuple[LocalMlflowServer, WineModel]]:
    """A fresh ``mlflow server`` whose store already holds the two trained wine versions.

    The first call of a session trains and registers them for real in a template server
    (register_wine_versions) and stops it; every call then starts a real server on its own copy
    of that template's sqlite store and artifacts. Each module still gets its own server and
    state, without paying for the schema migrations and the training again (~10 s a module).
    """
    template, wine = _wine_template(tmp_path_factory, timeout)
    workdir = tmp_path_factory.mktemp(name)
    shutil.copytree(template, workdir, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.log"))
    server = LocalMlflowServer(workdir).start(timeout=timeout)
    try:
        yield server, wine
    finally:
        server.stop(grace=STOP_GRACE)


def _wine_template(tmp_path_factory: pytest.TempPathFactory, timeout: float) -> tuple[Path, WineModel]:
    template = tmp_path_factory.getbasetemp() / "mlflow-wine-template"
    manifest = template / "wine.json"
    if not manifest.exists():
        shutil.rmtree(template, ignore_errors=True)  # a half-made template from a failed start
        server = LocalMlflowServer(template).start(timeout=timeout)
        try:
            wine = register_wine_versions(server.url)
        finally:
            server.stop()  # a full graceful stop: the copies start from a cleanly closed store
        manifest.write_text(json.dumps({"name": wine.name, "v1": wine.v1, "v2": wine.v2}))
    data = json.loads(manifest.read_text())
    return template, WineModel(name=data["name"], v1=data["v1"], v2=data["v2"])


@dataclass(frozen=True)
class WineModel:
    """Two registered versions of the wine model; v2 has strictly higher accuracy."""

    name: str
    v1: dict[str, Any]
    v2: dict[str, Any]


def register_wine_versions(tracking_uri: str, model_name: str = WINE_MODEL) -> WineModel:
    """Train and register v1 (weaker) and v2 (better) once; ~8 s including ``import mlflow``."""
    v1 = train_wine_version(tracking_uri, model_name, tags={"trained_by": "harness", "flavor": "v1"},
                            **V1_PARAMS)
    v2 = train_wine_version(tracking_uri, model_name, tags={"trained_by": "harness", "flavor": "v2"},
                            **V2_PARAMS)
    assert v2["metrics"]["accuracy"] > v1["metrics"]["accuracy"], (v1, v2)
    return WineModel(name=model_name, v1=v1, v2=v2)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class RecordingServer:
    """A tiny HTTP server on loopback that records each request and answers with ``respond``.

    A stand-in for a failing or auth-checking registry: MLflow cannot be told to answer 503.
    """

    respond: Callable[[Recorded], tuple[int, dict[str, str], bytes]]
    requests: list[Recorded] = field(default_factory=list)
    _httpd: http.server.ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def __enter__(self) -> RecordingServer:
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                rec = Recorded(self.command, self.path, dict(self.headers), self.rfile.read(length))
                outer.requests.append(rec)
                status, headers, body = outer.respond(rec)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

            def log_message(self, *args: object) -> None:  # keep test output quiet
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self._httpd.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._httpd is not None
        self._httpd.shutdown()
        self._httpd.server_close()


def process_alive(pid: int) -> bool:
    """True if pid exists and is not a zombie (reads /proc, no psutil)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
