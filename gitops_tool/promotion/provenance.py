"""Who moved the alias: what can be known of it, for the commit's trailers and the pull request.

MLflow's webhook payload names the model, alias and version, not the person who moved the alias. So
a promotion records what is known instead: the delivery id and time (from the webhook's headers),
and from the registry the model version's creator (`user_id`, empty unless the registry runs with
auth) and its run. It says plainly that the actor is not known.
"""

from __future__ import annotations

from datetime import datetime, timezone

from gitops_tool.errors import GitopsError
from gitops_tool.promotion.model import PromotionRequest
from gitops_tool.registry import ModelVersion

ACTOR_UNKNOWN = "not known (MLflow webhooks do not send it)"
AUTOMATIC = ("webhook", "reconcile", "workflow")


def provenance(req: PromotionRequest, version: ModelVersion, client=None) -> dict[str, str]:
    """Trailers of an automatic promotion: Delivered-At, Version-Created-By, Run-User, Alias-Moved-By.

    A promotion a person runs (the CLI) has an actor: the commit's author. It gets none of these."""
    out: dict[str, str] = {}
    if req.trigger not in AUTOMATIC:
        return out
    if req.delivered_at:
        out["Delivered-At"] = datetime.fromtimestamp(req.delivered_at, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    out["Version-Created-By"] = version.user_id or "not recorded by the registry"
    if client is not None and version.run_id:
        try:
            user = client.get_run_user(version.run_id)
        except GitopsError:  # the run is gone or the registry hiccuped: provenance never fails a promotion
            user = None
        out["Run-User"] = f"{user} (as the training client reported it)" if user else "not recorded"
    out["Alias-Moved-By"] = ACTOR_UNKNOWN
    return out
