"""`schemas pull`: write CRD JSON Schemas from a live cluster into a folder `validate --schema-dir` reads.

No cluster runs where this project is developed: the tests drive it against a loopback stand-in
of the apiextensions API serving a recorded CustomResourceDefinition list.

Conversion (the openapi2jsonschema idea): an object schema with `properties` and neither
`additionalProperties` nor `x-kubernetes-preserve-unknown-fields` becomes strict
(`additionalProperties: false`); `x-kubernetes-int-or-string` becomes string-or-integer;
`nullable` adds "null"; `apiVersion` and `kind` get one-value enums and are required.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gitops_tool.errors import GitopsError


def _convert(node: Any) -> Any:
    if isinstance(node, list):
        return [_convert(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: _convert(v) for k, v in node.items()}
    if out.pop("x-kubernetes-int-or-string", False):
        out.pop("type", None)
        out.pop("anyOf", None)
        out["oneOf"] = [{"type": "string"}, {"type": "integer"}]
    if out.pop("nullable", False) and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    if ("properties" in out and "additionalProperties" not in out
            and not out.get("x-kubernetes-preserve-unknown-fields")):
        out["additionalProperties"] = False
    return out


def crd_schemas(crd: dict) -> dict[str, dict]:
    """{"<group>/<kind lower>_<version>.json": schema} for every served version of one CRD."""
    spec = crd.get("spec") or {}
    group, kind = spec.get("group"), (spec.get("names") or {}).get("kind")
    if not group or not kind:
        raise GitopsError(f"CRD {crd.get('metadata', {}).get('name')!r}: no spec.group or spec.names.kind")
    out = {}
    for version in spec.get("versions") or []:
        raw = ((version.get("schema") or {}).get("openAPIV3Schema"))
        if not version.get("served") or not raw:
            continue
        schema = _convert(raw)
        schema["$schema"] = "http://json-schema.org/draft-07/schema#"
        schema["$comment"] = f"made by gitops-tool schemas pull from CRD {crd['metadata']['name']}"
        props = schema.setdefault("properties", {})
        props["apiVersion"] = {"type": "string", "enum": [f"{group}/{version['name']}"]}
        props["kind"] = {"type": "string", "enum": [kind]}
        schema["required"] = sorted(set(schema.get("required", [])) | {"apiVersion", "kind"})
        out[f"{group}/{kind.lower()}_{version['name']}.json"] = schema
    return out


def pull(out_dir: Path, *, context: str | None = None, kubeconfig: str | None = None,
         groups: list[str] | None = None) -> list[Path]:
    from kubernetes import client

    from gitops_tool.cluster.api import connect

    reader = connect(context, kubeconfig)
    api = client.ApiextensionsV1Api(reader.api.api_client)
    try:
        response = api.list_custom_resource_definition(_preload_content=False, _request_timeout=30)
        items = json.loads(response.data)["items"]
    except Exception as exc:  # noqa: BLE001 - any transport or API error is the user's cluster, not a bug
        raise GitopsError(f"cannot list CustomResourceDefinitions at {reader.where}: {exc}") from None
    written = []
    for crd in items:
        if groups and crd.get("spec", {}).get("group") not in groups:
            continue
        for rel, schema in crd_schemas(crd).items():
            target = out_dir / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(schema, indent=1, sort_keys=True) + "\n", encoding="utf-8")
            written.append(target)
    return written
