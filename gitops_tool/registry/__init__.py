"""MLflow registry access over REST (no ``import mlflow``)."""

from gitops_tool.registry.client import ModelVersion, RegistryClient
from gitops_tool.registry.refs import ModelRef, parse_ref, resolve_tracking_uri

__all__ = ["ModelRef", "ModelVersion", "RegistryClient", "parse_ref", "resolve_tracking_uri"]
