"""Read gitops.yaml, check it against the packaged JSON Schema, report errors with line numbers."""

from __future__ import annotations

import json
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from gitops_tool.config.build import build_config
from gitops_tool.config.model import Config
from gitops_tool.errors import GitopsError

CONFIG_FILE = "gitops.yaml"
SCHEMA_FILE = "gitops.schema.json"
DNS_LABEL = "^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$"


@lru_cache(maxsize=1)
def schema() -> dict[str, Any]:
    return json.loads(resources.files("gitops_tool.schema").joinpath(SCHEMA_FILE).read_text())


@lru_cache(maxsize=1)
def schema_text() -> str:
    return resources.files("gitops_tool.schema").joinpath(SCHEMA_FILE).read_text()


def find_config(start: Path | None = None) -> Path:
    """The gitops.yaml in `start` or its nearest parent."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / CONFIG_FILE
        if candidate.is_file():
            return candidate
    raise GitopsError(
        f"{CONFIG_FILE}: not found in {here} or any parent directory",
        hint="run `gitops-tool init` to write a starter, or pass --config",
    )


def load_config(path: Path) -> Config:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise GitopsError(f"{path}: not found", hint="run `gitops-tool init` to write a starter") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise GitopsError(f"{path}: cannot read: {exc}") from None
    return load_config_text(text, source=path)


def load_config_text(text: str, source: Path | str = CONFIG_FILE) -> Config:
    from gitops_tool.config import parse_cache

    root = Path(source).resolve().parent if isinstance(source, Path) else Path.cwd()
    if cached := parse_cache.lookup(text, schema_text()):  # this text loaded cleanly before
        plain, line_of = cached
        return build_config(plain, source=str(source), root=root, line_of=line_of)
    doc = _parse_yaml(text, str(source))
    plain = _to_plain(doc)
    if not isinstance(plain, dict):
        raise GitopsError(f"{source}:1: the top level must be a mapping, got {type(plain).__name__}")
    _refuse_v1(plain, doc, str(source))
    errors = _schema_errors(plain, doc, str(source))
    if errors:
        raise GitopsError("\n".join(errors))
    entry = parse_cache.snapshot(plain, doc)
    config = build_config(plain, source=str(source), root=root, line_of=lambda p: _line_of(doc, p))
    parse_cache.store(text, schema_text(), entry)
    return config


V1_MOVES = (
    "mlflow.* and receiver.* moved under platform: (platform.tracking_uri, platform.mlflow, platform.receiver)",
    "each environment's MLflow stack (host, replicas, resources, storage, tls, basic_auth, autoscaling, "
    "secrets) became one platform.instances.<name> entry with registry_of_record: true",
    "environments: now lists serving targets only: namespace, cluster and serving "
    "(mode, min_replicas, max_replicas, resources, models)",
    "models.<name>.min_replicas and max_replicas moved to environments.<env>.serving",
    "mlflow.artifacts_bucket moved to platform.object_store.bucket; storage.minio is storage.object_store",
    "argocd.destination_server became argocd.clusters (name -> URL) and a cluster: per instance and environment",
)


def _refuse_v1(plain: dict, doc: Any, source: str) -> None:
    """v1 had one MLflow stack per environment; v2 has one platform and serving environments."""
    if plain.get("apiVersion") != "gitops-tool/v1":
        return
    line = _line_of(doc, ["apiVersion"]) or 1
    moves = "".join(f"\n  - {m}" for m in V1_MOVES)
    raise GitopsError(
        f"{source}:{line} apiVersion: gitops-tool/v1 is no longer read; rewrite it as gitops-tool/v2:{moves}",
        hint="README.md, 'From gitops-tool/v1', shows a v1 file and its v2 equivalent; nothing was written",
    )


def _parse_yaml(text: str, source: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    yaml = YAML(typ="rt")
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = f":{mark.line + 1}" if mark else ""
        raise GitopsError(f"{source}{line}: malformed YAML: {exc.problem or exc.context}") from None
    except YAMLError as exc:
        raise GitopsError(f"{source}: malformed YAML: {exc}") from None


def _to_plain(node: Any) -> Any:
    if isinstance(node, dict):
        return {str(k): _to_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_to_plain(v) for v in node]
    return node


def _schema_errors(plain: dict, doc: Any, source: str) -> list[str]:
    from gitops_tool.config.valid_cache import known_valid, record_valid

    text = schema_text()
    if known_valid(plain, text):
        return []
    found = _check_schema(plain, doc)
    if not found:
        record_valid(plain, text)
    return [f"{source}:{line or 1} {path or '(top level)'}: {msg}" for line, path, msg in found]


def _check_schema(plain: dict, doc: Any) -> list[tuple]:
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(schema())
    found = []
    for err in validator.iter_errors(plain):
        path = list(err.absolute_path)
        message = err.message
        if err.validator == "additionalProperties" and isinstance(err.instance, dict):
            allowed = set(err.schema.get("properties", {}))
            extra = sorted(k for k in err.instance if k not in allowed)
            if extra:
                path = path + [extra[0]]
                message = f"unknown key {extra[0]!r} (allowed: {', '.join(sorted(allowed))})"
        elif "propertyNames" in err.absolute_schema_path:
            path = path + [err.instance]
            message = f"{err.instance!r} is not a valid name: {_describe(err)}"
        elif err.validator == "pattern" and err.schema.get("pattern") == DNS_LABEL:
            message = f"{err.instance!r} is not a valid name: {_describe(err)}"
        found.append((_line_of(doc, path), _dotted(path), message))
    found.sort(key=lambda item: (item[0] or 0, item[1]))
    return found


def _describe(err: Any) -> str:
    if err.schema.get("pattern") == DNS_LABEL:
        return "must be a DNS label (lower case letters, digits and '-', at most 63 characters)"
    return err.message


def _dotted(path: list) -> str:
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(doc: Any, path: list) -> int | None:
    """1-based line of the deepest node on `path` that ruamel recorded a position for."""
    line = None
    node = doc
    for part in path:
        try:
            if isinstance(part, int) and isinstance(node, list):
                line = node.lc.item(part)[0] + 1
            elif isinstance(node, dict):
                line = node.lc.key(part)[0] + 1
            node = node[part]
        except (AttributeError, KeyError, IndexError, TypeError):
            break
    return line
