"""`validate`: strict Kubernetes schemas, CRD schemas, project rules and a secret scan."""

from __future__ import annotations

from gitops_tool.validate.findings import ERROR, UNCHECKED, WARNING, Finding
from gitops_tool.validate.kube_schemas import K8S_VERSION
from gitops_tool.validate.runner import validate_all, validate_environment
from gitops_tool.validate.secrets_scan import SecretHit, scan_text, scan_tree

__all__ = [
    "ERROR",
    "K8S_VERSION",
    "UNCHECKED",
    "WARNING",
    "Finding",
    "SecretHit",
    "scan_text",
    "scan_tree",
    "validate_all",
    "validate_environment",
]
