"""Built-in kinds against kubernetes-validate's strict schemas, loaded once per process.

`kubernetes_validate.validate()` re-reads the 1.4 MB `_definitions.json` and
builds a fresh validator on every call (~10 ms each, measured); here the same
files, the same version resolution and the same Draft 2020-12 validation are
used, but the definitions and each kind's validator are cached (~0.3 ms a
document), and every error of a document is reported instead of the first.
References into the definitions are inlined once per kind: `$ref` lookups
were ~40% of the validation time (measured).
"""

from __future__ import annotations

import json
import re
import threading
from functools import lru_cache
from typing import Any

from gitops_tool.errors import GitopsError
from gitops_tool.validate.findings import format_path, schema_message

# One pinned Kubernetes minor; kubernetes-validate 1.37 ships schemas for 1.25-1.37.
K8S_VERSION = "1.33.0"
MAX_ERRORS_PER_DOC = 20
_lock = threading.Lock()


def supported_versions() -> list[str]:
    from kubernetes_validate.utils import all_versions

    return all_versions()


@lru_cache(maxsize=None)
def schema_folder(k8s_version: str) -> Any:
    """The strict schema folder kubernetes-validate would use for this version."""
    from importlib.resources import files

    from kubernetes_validate.utils import all_versions, major_minor
    from packaging.version import Version

    wanted = Version(major_minor(k8s_version.lstrip("v")))
    versions = [v for v in all_versions() if Version(major_minor(v)) <= wanted]
    if not versions or Version(major_minor(all_versions()[-1])) < wanted:
        raise GitopsError(
            f"Kubernetes {k8s_version} is not supported by the installed kubernetes-validate "
            f"(it has {all_versions()[0]}..{all_versions()[-1]})"
        )
    root = files("kubernetes_validate").joinpath("kubernetes-json-schema")
    return root.joinpath(f"v{versions[-1]}-local-strict")


_REF = re.compile(r"^(?:/api/_definitions\.json)?#/\$defs/(.+)$")


@lru_cache(maxsize=None)
def _definitions(k8s_version: str) -> dict:
    return json.loads(schema_folder(k8s_version).joinpath("_definitions.json").read_text())


@lru_cache(maxsize=None)
def _registry(k8s_version: str) -> Any:
    from referencing import Registry, Resource

    return Resource.from_contents(_definitions(k8s_version)) @ Registry()


def _inline(node: Any, defs: dict, memo: dict, stack: tuple = ()) -> Any:
    """Replace `$ref`s with the definitions; a recursive one stays a `$ref` (the registry resolves it)."""
    if isinstance(node, list):
        return [_inline(item, defs, memo, stack) for item in node]
    if not isinstance(node, dict):
        return node
    match = _REF.match(node["$ref"]) if isinstance(node.get("$ref"), str) else None
    if match is None or match.group(1) not in defs:
        return {key: _inline(value, defs, memo, stack) for key, value in node.items()}
    name = match.group(1)
    if name in stack:
        return {**node, "$ref": f"/api/_definitions.json#/$defs/{name}"}
    if name not in memo:
        memo[name] = _inline(defs[name], defs, memo, stack + (name,))
    rest = {k: _inline(v, defs, memo, stack) for k, v in node.items() if k not in ("$ref", "description")}
    return {"allOf": [memo[name]], **rest} if rest else memo[name]


def _file_name(api_version: str, kind: str) -> str:
    # Same mapping as kubernetes-validate: rbac.authorization.k8s.io/v1 -> rbac-v1
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    return f"{kind.lower()}-{group_version}.json"


@lru_cache(maxsize=None)
def _validator(k8s_version: str, api_version: str, kind: str) -> Any:
    """A cached validator, or None when Kubernetes has no such kind/apiVersion."""
    import jsonschema
    from referencing import Resource

    if not re.fullmatch(r"[A-Za-z0-9]+", kind) or not re.fullmatch(r"[a-z0-9.\-]*/?[a-z0-9]+", api_version):
        return None
    path = schema_folder(k8s_version).joinpath(_file_name(api_version, kind))
    if not path.is_file():
        return None
    schema = json.loads(path.read_text())
    # The file name drops the group's domain; a CRD such as apps.example.com/v1 Deployment
    # must not be validated as apps/v1 Deployment.
    allowed = schema.get("properties", {}).get("apiVersion", {}).get("enum")
    if allowed and api_version not in allowed:
        return None
    registry = Resource.from_contents(schema) @ _registry(k8s_version)
    inlined = _inline(schema, _definitions(k8s_version)["$defs"], _memo(k8s_version))
    return jsonschema.Draft202012Validator(inlined, registry=registry)


@lru_cache(maxsize=None)
def _memo(k8s_version: str) -> dict:
    return {}


def warm_up(k8s_version: str = K8S_VERSION) -> None:
    """Load the shared definitions (for a background thread while kustomize runs)."""
    import jsonschema  # noqa: F401  (the import alone is ~90 ms)

    with _lock:
        _registry(k8s_version)


def is_core_group(api_version: str) -> bool:
    """Groups without a dot (v1, apps, batch, policy, ...) can only be built-in."""
    return "/" not in api_version or "." not in api_version.rsplit("/", 1)[0]


def check_builtin(doc: dict, k8s_version: str = K8S_VERSION) -> list[tuple[str, str]] | None:
    """(path, message) errors against the strict schema; None when this is not a built-in kind."""
    api_version, kind = doc.get("apiVersion"), doc.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return [("(root)", "apiVersion and kind must be strings")]
    with _lock:  # loading is not thread-safe in lru_cache terms (it would load twice)
        validator = _validator(k8s_version, api_version, kind)
    if validator is None:
        if is_core_group(api_version):
            return [("apiVersion", f"{api_version} {kind} is not served by Kubernetes {k8s_version}")]
        return None
    errors = sorted(validator.iter_errors(doc), key=lambda e: ([str(p) for p in e.absolute_path], e.message))
    return [(format_path(e.absolute_path), schema_message(e)) for e in errors[:MAX_ERRORS_PER_DOC]]
