"""Model references (``MODEL@ALIAS`` / ``MODEL/VERSION``) and tracking-URI resolution."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from gitops_tool.errors import UsageError

ACCEPTED_FORMS = "MODEL@ALIAS, MODEL/VERSION, models:/MODEL@ALIAS or models:/MODEL/VERSION"

# MLflow model names may contain spaces, dots and dashes but never '/' or '@' in our refs.
_NAME = r"[^/@\s][^/@]*?"
_ALIAS_RE = re.compile(rf"^(?P<model>{_NAME})@(?P<alias>[A-Za-z0-9_\-]+)$")
_VERSION_RE = re.compile(rf"^(?P<model>{_NAME})/(?P<version>[^/@]+)$")


@dataclass(frozen=True)
class ModelRef:
    """A registered model pinned either by alias or by version (exactly one)."""

    model: str
    alias: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        return f"{self.model}@{self.alias}" if self.alias else f"{self.model}/{self.version}"

    @property
    def uri(self) -> str:
        """The ``models:/`` URI MLflow itself understands."""
        return f"models:/{self}"


def parse_ref(text: str) -> ModelRef:
    """Parse a user-supplied model reference; raise GitopsError on anything else."""
    raw = (text or "").strip()
    body = raw[len("models:/"):] if raw.startswith("models:/") else raw
    if match := _ALIAS_RE.match(body):
        return ModelRef(model=match["model"].strip(), alias=match["alias"])
    if match := _VERSION_RE.match(body):
        version = match["version"].strip()
        if not version.isdigit() or int(version) < 1:
            raise UsageError(
                f"model reference {text!r}: version {version!r} is not a positive integer",
                hint=f"use one of {ACCEPTED_FORMS}",
            )
        return ModelRef(model=match["model"].strip(), version=str(int(version)))
    raise UsageError(
        f"cannot parse model reference {text!r}", hint=f"use one of {ACCEPTED_FORMS}"
    )


def resolve_tracking_uri(cli_value: str | None, config_value: str | None) -> str:
    """Pick the MLflow tracking URI: CLI flag, then $MLFLOW_TRACKING_URI, then gitops.yaml."""
    for value in (cli_value, os.environ.get("MLFLOW_TRACKING_URI"), config_value):
        if value and value.strip():
            return value.strip().rstrip("/")
    raise UsageError(
        "no MLflow tracking URI: none given by --tracking-uri, MLFLOW_TRACKING_URI "
        "or the mlflow tracking URI field of gitops.yaml",
        hint="pass --tracking-uri http://HOST:PORT or export MLFLOW_TRACKING_URI",
    )
