"""`schemas pull` against a stand-in for a cluster's apiextensions API (no cluster runs here):
a loopback HTTP server answers the real REST path with a recorded-shape CRD list."""

from __future__ import annotations

import http.server
import json
import os
import threading
from pathlib import Path

import pytest
import yaml

from gitops_tool.cluster.schemas_pull import crd_schemas
from gitops_tool.validate import validate_environment
from tests.conftest import run_cli

CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com", "names": {"kind": "Widget", "plural": "widgets"}, "scope": "Namespaced",
        "versions": [
            {"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": {
                "type": "object",
                "properties": {
                    "apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": {"type": "object"},
                    "spec": {"type": "object", "required": ["size"], "properties": {
                        "size": {"x-kubernetes-int-or-string": True, "anyOf": [{"type": "integer"}, {"type": "string"}]},
                        "note": {"type": "string", "nullable": True},
                        "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                    }},
                }}}},
            {"name": "v0", "served": False, "storage": False, "schema": {"openAPIV3Schema": {"type": "object"}}},
        ],
    },
}


@pytest.fixture
def api_server(tmp_path: Path):
    body = json.dumps({"kind": "CustomResourceDefinitionList", "apiVersion": "apiextensions.k8s.io/v1",
                       "items": [CRD]}).encode()
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen.append(self.path)
            ok = self.path.split("?")[0] == "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
            self.send_response(200 if ok else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body if ok else b'{"kind":"Status","code":404}')

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "stand-in",
        "clusters": [{"name": "stand-in", "cluster": {"server": f"http://127.0.0.1:{server.server_port}"}}],
        "users": [{"name": "nobody", "user": {}}],
        "contexts": [{"name": "stand-in", "context": {"cluster": "stand-in", "user": "nobody"}}],
    }))
    yield kubeconfig, seen
    server.shutdown()


def test_conversion_rules():
    (path, schema), = crd_schemas(CRD).items()
    assert path == "example.com/widget_v1.json"  # v0 is not served
    spec = schema["properties"]["spec"]
    assert spec["additionalProperties"] is False
    assert spec["properties"]["size"]["oneOf"] == [{"type": "string"}, {"type": "integer"}]
    assert spec["properties"]["note"]["type"] == ["string", "null"]
    assert "additionalProperties" not in spec["properties"]["extra"]
    assert schema["properties"]["kind"]["enum"] == ["Widget"] and "apiVersion" in schema["required"]


def test_pull_writes_schemas_that_validate_documents(api_server, tmp_path: Path):
    kubeconfig, seen = api_server
    out = tmp_path / "schemas"
    result = run_cli("schemas", "pull", "--out", str(out), env=os.environ | {"KUBECONFIG": str(kubeconfig)})
    assert result.returncode == 0, result.stderr
    assert seen and seen[0].startswith("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    assert (out / "example.com/widget_v1.json").is_file()
    good = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 3, note: null}\n"
    assert validate_environment("dev", good, schema_dir=out) == []
    bad = good.replace("size: 3", "sise: 3")
    messages = [str(f) for f in validate_environment("dev", bad, schema_dir=out)]
    assert any("sise" in m for m in messages) and any("'size' is a required property" in m for m in messages)


def test_pull_without_a_cluster_is_a_clear_error(tmp_path: Path):
    result = run_cli("schemas", "pull", "--kubeconfig", str(tmp_path / "missing"),
                     env={k: v for k, v in os.environ.items() if k != "KUBERNETES_SERVICE_HOST"})
    assert result.returncode == 1 and "no kubeconfig" in result.stderr
