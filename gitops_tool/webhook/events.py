"""Parse a delivery body and decide whether gitops.yaml maps it to an environment."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from gitops_tool.config.model import Config


class Malformed(ValueError):
    """The body is not an MLflow webhook payload."""


@dataclass(frozen=True)
class AliasEvent:
    entity: str
    action: str
    data: dict[str, Any]
    sent_at: float | None = None  # the body's ISO "timestamp" (microseconds), when present and zoned


def parse(body: bytes) -> AliasEvent:
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise Malformed(f"body is not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise Malformed("body is not a JSON object")
    entity, action, data = doc.get("entity"), doc.get("action"), doc.get("data")
    if not isinstance(entity, str) or not isinstance(action, str) or not isinstance(data, dict):
        raise Malformed("body needs string 'entity' and 'action' and an object 'data'")
    if (entity, action) == ("model_version_alias", "created"):
        for key in ("name", "alias", "version"):
            value = data.get(key)
            if isinstance(value, bool) or not isinstance(value, (str, int)) or str(value) == "":
                raise Malformed(f"model_version_alias.created needs data.{key} (string)")
    return AliasEvent(entity, action, data, _sent_at(doc.get("timestamp")))


def _sent_at(value: Any) -> float | None:
    """Epoch seconds of the body's timestamp; the X-MLflow-Timestamp header has whole seconds only."""
    if not isinstance(value, str):
        return None
    try:
        when = datetime.fromisoformat(value)
        return when.timestamp() if when.tzinfo is not None else None
    except (ValueError, OverflowError, OSError):
        return None


class AliasMap:
    """Registered model name (or gitops.yaml model name) + alias -> environment."""

    def __init__(self, config: Config):
        self._models = {}
        for model in config.models.values():
            self._models[model.name] = model
            self._models[model.registered_model] = model

    def route(self, ev: AliasEvent) -> tuple[str | None, str]:
        """(env, reason): env is None when the event is to be ignored, reason says why."""
        if (ev.entity, ev.action) != ("model_version_alias", "created"):
            return None, f"event {ev.entity}.{ev.action} does not trigger promotions"
        name, alias = str(ev.data["name"]), str(ev.data["alias"])
        model = self._models.get(name)
        if model is None:
            return None, f"model {name!r} is not in gitops.yaml"
        env = model.aliases.get(alias)
        if env is None:
            return None, f"alias {alias!r} of {name!r} maps to no environment in gitops.yaml"
        return env, f"{name}@{alias} -> {env}"


class LiveAliasMap:
    """An AliasMap that follows gitops.yaml on disk: a changed file (a ConfigMap update, an edit) is
    read again before the next delivery is routed, so a new alias mapping needs no restart. A file
    that does not load keeps the last good map (and says so in the log)."""

    def __init__(self, path: Path, config: Config):
        self.path, self._map = path, AliasMap(config)
        self._seen = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def route(self, ev: AliasEvent) -> tuple[str | None, str]:
        stamp = self._stamp()
        if stamp is not None and stamp != self._seen:
            self._seen = stamp
            self._reload()
        return self._map.route(ev)

    def _reload(self) -> None:
        import logging

        from gitops_tool.config import load_config
        from gitops_tool.errors import GitopsError
        from gitops_tool.webhook.logs import event

        try:
            self._map = AliasMap(load_config(self.path))
        except GitopsError as exc:
            event(logging.WARNING, f"{self.path} changed but does not load; keeping the previous alias map: "
                  f"{str(exc).splitlines()[0]}", outcome="config_error")
            return
        event(logging.INFO, f"{self.path} changed: alias map reloaded", outcome="config_reloaded")
