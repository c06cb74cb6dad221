"""The registry client's HTTP transport: TLS with a CA file or none, keep-alive, redirects, proxies.

Stand-ins, named: loopback `http.server` servers play the tracking server behind TLS, a redirect
and an HTTP proxy (MLflow itself serves plain HTTP only; the registry calls against a real MLflow
are in test_registry_client.py). The certificate is a real self-signed one made with openssl."""

from __future__ import annotations

import http.server
import json
import shutil
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from gitops_tool.errors import GitopsError
from gitops_tool.registry import RegistryClient

VERSION = {"model_version": {"name": "m", "version": "3", "status": "READY", "aliases": ["champion"]}}


class Server:
    """HTTP/1.1 (keep-alive) on loopback; counts connections and records request lines."""

    def __init__(self, respond, *, tls: ssl.SSLContext | None = None):
        outer = self
        self.connections, self.lines, self.respond = 0, [], respond

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self):
                outer.connections += 1
                super().setup()

            def do_GET(self):
                outer.lines.append((self.command, self.path, dict(self.headers)))
                status, headers, body = outer.respond(self)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_POST = do_GET

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.scheme = "https" if tls else "http"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{self.scheme}://localhost:{self.httpd.server_address[1]}"

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def _version(_handler):
    return 200, {"Content-Type": "application/json"}, json.dumps(VERSION).encode()


@pytest.fixture
def cert(tmp_path: Path) -> tuple[Path, Path]:
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    key, crt = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(crt),
                    "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost"],
                   check=True, capture_output=True)
    return key, crt


@pytest.fixture(autouse=True)
def _no_proxy_or_auth(monkeypatch):
    for var in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "MLFLOW_TRACKING_SERVER_CERT_PATH",
                "MLFLOW_TRACKING_INSECURE_TLS", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_TOKEN",
                "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
        monkeypatch.delenv(var.upper(), raising=False)


def test_tls_with_the_servers_ca_file_without_it_and_unverified(cert, monkeypatch):
    key, crt = cert
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(crt, key)
    server = Server(_version, tls=context)
    try:
        with pytest.raises(GitopsError, match="TLS error.*MLFLOW_TRACKING_SERVER_CERT_PATH|TLS error") as info:
            RegistryClient(server.url, retries=0).get_version("m", 3)
        assert "certificate verify failed" in str(info.value)
        monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(crt))
        with RegistryClient(server.url) as client:
            assert client.get_version("m", 3).version == "3"
            assert client.get_version_by_alias("m", "champion").aliases == ["champion"]
        assert server.connections == 1  # one kept-alive connection for both (the refused handshake never got one)
        monkeypatch.delenv("MLFLOW_TRACKING_SERVER_CERT_PATH")
        monkeypatch.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
        assert RegistryClient(server.url).get_version("m", 3).version == "3"
    finally:
        server.close()


def test_a_kept_alive_connection_the_server_closed_is_replaced(monkeypatch):
    closes = iter([True, False, False])

    def respond(handler):
        if next(closes, False):
            handler.close_connection = True
            return 200, {"Connection": "close", "Content-Type": "application/json"}, json.dumps(VERSION).encode()
        return _version(handler)

    server = Server(respond)
    try:
        with RegistryClient(server.url, retries=0) as client:
            for _ in range(3):
                assert client.get_version("m", 3).version == "3"
        assert server.connections == 2
    finally:
        server.close()


def test_redirects_are_followed_and_keep_the_query(monkeypatch):
    def respond(handler):
        if handler.path.startswith("/old"):
            return 308, {"Location": handler.path.replace("/old", "", 1)}, b""
        return _version(handler)

    server = Server(respond)
    try:
        assert RegistryClient(server.url + "/old").get_version("m", 3).version == "3"
        assert [p for _, p, _ in server.lines] == ["/old/api/2.0/mlflow/model-versions/get?name=m&version=3",
                                                   "/api/2.0/mlflow/model-versions/get?name=m&version=3"]
    finally:
        server.close()


def test_http_proxy_from_the_environment_and_no_proxy(monkeypatch):
    proxy = Server(_version)  # a forward proxy sees the absolute URL in the request line
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy.url)
        assert RegistryClient("http://registry.invalid:5000").get_version("m", 3).version == "3"
        assert proxy.lines[0][1] == "http://registry.invalid:5000/api/2.0/mlflow/model-versions/get?name=m&version=3"
        monkeypatch.setenv("NO_PROXY", "registry.invalid")
        with pytest.raises(GitopsError, match="cannot connect"):
            RegistryClient("http://registry.invalid:5000", retries=0).get_version("m", 3)
        assert len(proxy.lines) == 1
    finally:
        proxy.close()


def test_connection_refused_is_a_retryable_error_naming_the_cause():
    server = Server(_version)
    url = server.url
    server.close()
    with pytest.raises(GitopsError, match="cannot connect: .*Connection refused") as info:
        RegistryClient(url, retries=1, backoff=0.01).get_version("m", 3)
    assert info.value.retryable and "gave up after 2 attempts" in str(info.value)
