"""Create or update the MLflow webhook that feeds the receiver (idempotent, keyed by name)."""

from __future__ import annotations

import ipaddress
from typing import Any
from urllib.parse import urlsplit

from gitops_tool.errors import GitopsError
from gitops_tool.registry.client import RegistryClient

EVENTS = [("model_version_alias", "created"), ("model_version_alias", "deleted")]
DESCRIPTION = "gitops-tool: registry alias moves become Git promotions"
_INTERNAL_SUFFIXES = (".svc", ".cluster.local", ".local", ".internal", ".localdomain", ".lan")


def _event_keys(events: list[Any]) -> set[tuple[str, str]]:
    keys = set()
    for e in events:
        entity, action = (e["entity"], e["action"]) if isinstance(e, dict) else e
        keys.add((str(entity).upper(), str(action).upper()))
    return keys


def register_webhook(client: RegistryClient, *, url: str, secret: str, name: str = "gitops-tool",
                     update_secret: bool = False) -> tuple[str, dict[str, Any]]:
    """Ensure one webhook named ``name`` sends alias created/deleted events to ``url``.

    Returns ("created" | "updated" | "unchanged", webhook). MLflow never returns a stored
    secret, so it cannot be compared: an existing webhook whose url, events and status
    already match is left alone unless ``update_secret`` (use it when rotating the secret).
    """
    if not secret:
        raise GitopsError("register webhook: a secret is required (the receiver refuses unsigned deliveries)")
    if urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname:
        raise GitopsError(f"register webhook: {url!r} is not an http(s) URL")
    matches = [h for h in client.list_webhooks() if h.get("name") == name]
    if len(matches) > 1:
        ids = ", ".join(str(h.get("webhook_id")) for h in matches)
        raise GitopsError(f"MLflow has {len(matches)} webhooks named {name!r} ({ids})",
                          hint="delete all but one, then register again")
    if not matches:
        return "created", client.create_webhook(name, url, EVENTS, secret, description=DESCRIPTION)
    hook = matches[0]
    same = (hook.get("url") == url and _event_keys(hook.get("events", [])) == _event_keys(EVENTS)
            and str(hook.get("status", "ACTIVE")).upper() == "ACTIVE")
    if same and not update_secret:
        return "unchanged", hook
    updated = client.update_webhook(hook["webhook_id"], url=url, events=EVENTS, secret=secret,
                                    status="ACTIVE", description=DESCRIPTION)
    return "updated", updated


def server_settings_needed(url: str) -> list[str]:
    """Human lines naming the MLflow server settings a webhook to ``url`` needs."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    lines = []
    if parts.scheme == "http":
        lines.append("MLFLOW_WEBHOOK_ALLOWED_SCHEMES must include http (the default allows https only), "
                     "e.g. MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https")
    private = _private_reason(host)
    if private:
        lines.append(f"MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true ({host} is {private}; "
                     "MLflow refuses private addresses by default)")
    if host and not _is_ip(host):
        lines.append(f"the host {host} must resolve in DNS from the MLflow server when the webhook is "
                     "created (create the receiver's Service first)")
    return lines


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _private_reason(host: str) -> str | None:
    if _is_ip(host):
        ip = ipaddress.ip_address(host)
        if ip.is_loopback:
            return "a loopback address"
        if ip.is_private or ip.is_link_local or ip.is_reserved or ip.is_unspecified:
            return "a private address"
        return None
    name = host.lower().rstrip(".")
    if name == "localhost" or name.endswith(".localhost"):
        return "a loopback name"
    if "." not in name or name.endswith(_INTERNAL_SUFFIXES):
        return "a cluster-internal name that resolves to a private address"
    return None
