"""`validate`: strict Kubernetes schemas, CRD schemas, project rules and a secret scan.

The names below load their module on first use (PEP 562), so a command that needs one small piece
(the Kubernetes version, the secret patterns) does not import the schema validators with it."""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    "ERROR": "findings", "UNCHECKED": "findings", "WARNING": "findings", "Finding": "findings",
    "K8S_VERSION": "kube_schemas",
    "validate_all": "runner", "validate_environment": "runner",
    "SecretHit": "secrets_scan", "scan_text": "secrets_scan", "scan_tree": "secrets_scan",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
