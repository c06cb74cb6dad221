"""`reconcile`: the polling fallback for lost webhooks. Registry aliases vs Git, promote the drift.

Safe to run every few minutes: in-sync pairs cost one registry call per model and make no commit;
held pairs are skipped; a failing pair is reported and the rest still run.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from gitops_tool.errors import GitopsError
from gitops_tool.promotion.engine import promote_in
from gitops_tool.promotion.model import PromotionRequest
from gitops_tool.promotion.overlay_edit import schema_dir_from_env
from gitops_tool.promotion.status import collect
from gitops_tool.promotion.workspace import open_workspace
from gitops_tool.registry import RegistryClient, resolve_tracking_uri


@dataclass
class ReconcileItem:
    model: str
    env: str
    alias: str
    registry_version: str | None
    git_version: str | None
    action: str            # in-sync | promoted | held | would-promote | failed | skipped
    detail: str = ""
    commit: str | None = None


def reconcile(*, config_path: Path | None = None, repo_url: str | None = None, branch: str | None = None,
              tracking_uri: str | None = None, dry_run: bool = False, push: bool = True) -> list[ReconcileItem]:
    items: list[ReconcileItem] = []
    with open_workspace(config_path, repo_url, branch) as ws:
        uri = resolve_tracking_uri(tracking_uri, ws.cfg.mlflow.get("tracking_uri"))
        with RegistryClient(uri) as client:
            rows, problem = collect(ws.cfg, client)
        if problem:
            raise GitopsError(f"reconcile: {problem}", retryable=True)
        for row in rows:
            for alias, version in row.aliases.items():
                item = ReconcileItem(row.model, row.env, alias, version, row.git_version, "in-sync")
                items.append(item)
                if version is None:
                    item.action, item.detail = "skipped", f"@{alias} is not set in the registry"
                elif alias not in row.drift:
                    continue
                elif row.hold:
                    item.action, item.detail = "held", row.hold
                elif dry_run:
                    item.action = "would-promote"
                else:
                    _promote(ws, item, uri, push)
    return items


def _promote(ws, item: ReconcileItem, uri: str, push: bool) -> None:
    req = PromotionRequest(ref=f"{item.model}@{item.alias}", env=item.env, trigger="reconcile",
                           tracking_uri=uri, push=push)
    try:
        result = promote_in(ws, req, schema_dir=schema_dir_from_env())
    except GitopsError as exc:
        item.action, item.detail = "failed", str(exc).splitlines()[0]
        return
    if result.commit:
        item.action, item.commit = "promoted", result.commit
        item.detail = f"{result.from_version or 'none'} -> {result.to_version}"
    else:
        item.action, item.detail = "skipped", result.skipped or ""


def as_json(items: list[ReconcileItem]) -> list[dict]:
    return [asdict(i) for i in items]
