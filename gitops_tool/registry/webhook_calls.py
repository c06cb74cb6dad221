"""The registry client's webhook calls (MLflow >= 3.3, SQL backends only), mixed into RegistryClient.

A separate module only to keep client.py readable; `_request` and `API` are the client's own.
"""

from __future__ import annotations

from typing import Any

from gitops_tool.errors import GitopsError

API = "/api/2.0/mlflow"
_WEBHOOK_FIELDS = {"name", "description", "url", "events", "secret", "status"}


def _event(event: tuple[str, str] | str) -> dict[str, str]:
    """Normalise ("model_version_alias", "created") or "entity.action" to MLflow's upper case."""
    entity, action = event.rsplit(".", 1) if isinstance(event, str) else event
    return {"entity": entity.upper(), "action": action.upper()}



class WebhookCalls:
    """list/create/update/delete of MLflow webhooks; needs the host class's ``_request``."""

    _request: Any

    def list_webhooks(self) -> list[dict[str, Any]]:
        hooks: list[dict[str, Any]] = []
        params: dict[str, Any] = {"max_results": 100}
        while True:
            body = self._request("GET", f"{API}/webhooks", "webhooks", params=params)
            hooks.extend(body.get("webhooks", []))
            if not body.get("next_page_token"):
                return hooks
            params["page_token"] = body["next_page_token"]

    def create_webhook(
        self,
        name: str,
        url: str,
        events: list[tuple[str, str]],
        secret: str | None,
        description: str | None = None,
    ) -> dict[str, Any]:
        payload: dict[str, Any] = {"name": name, "url": url, "events": [_event(e) for e in events]}
        if secret:
            payload["secret"] = secret
        if description:
            payload["description"] = description
        body = self._request(
            "POST", f"{API}/webhooks", f"webhook {name!r} ({url})", idempotent=False, json=payload
        )
        return body["webhook"]

    def update_webhook(self, webhook_id: str, **fields: Any) -> dict[str, Any]:
        unknown = set(fields) - _WEBHOOK_FIELDS
        if unknown:
            raise GitopsError(
                f"webhook {webhook_id}: cannot update {sorted(unknown)}; "
                f"allowed fields are {sorted(_WEBHOOK_FIELDS)}"
            )
        payload = {k: v for k, v in fields.items() if v is not None}
        if "events" in payload:
            payload["events"] = [_event(e) for e in payload["events"]]
        if "status" in payload:
            payload["status"] = str(payload["status"]).upper()
        body = self._request(
            "PATCH", f"{API}/webhooks/{webhook_id}", f"webhook {webhook_id}", json=payload
        )
        return body["webhook"]

    def delete_webhook(self, webhook_id: str) -> None:
        self._request("DELETE", f"{API}/webhooks/{webhook_id}", f"webhook {webhook_id}")
