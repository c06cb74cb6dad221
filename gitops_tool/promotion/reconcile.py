"""`reconcile`: the polling fallback for lost webhooks. Registry aliases vs Git, promote the drift.

Safe to run every few minutes: in-sync pairs cost one registry call per model and make no commit;
held pairs are skipped; a failing pair (or a model missing from the registry) is reported and the
rest still run. Pairs run in stage order (an environment before those whose require_previous_stage
names it), so one run converges staging and then prod. `--dry-run` runs the gates and the validation
too, and reports what the real run would do.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from gitops_tool.errors import GitopsError
from gitops_tool.promotion import after_push
from gitops_tool.promotion.engine import promote_in
from gitops_tool.promotion.model import PromotionRequest
from gitops_tool.promotion.overlay_edit import schema_dir_from_env
from gitops_tool.promotion.status import EnvStatus, collect
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
            rows, _ = collect(ws.cfg, client)
        pushed = False
        for row in stage_order(ws.cfg, rows):
            if row.error:
                items.append(ReconcileItem(row.model, row.env, "-", None, row.git_version, "failed", row.error))
                continue
            for alias, version in row.aliases.items():
                item = ReconcileItem(row.model, row.env, alias, version, row.git_version, "in-sync")
                items.append(item)
                if version is None:
                    item.action, item.detail = "skipped", f"@{alias} is not set in the registry"
                elif alias not in row.drift:
                    continue
                elif row.hold:
                    item.action, item.detail = "held", row.hold
                    if not dry_run and (failed := after_push.held(ws.cfg, uri, row.model, version, row.env,
                                                                  row.hold, "reconcile")):
                        item.detail += f" (not recorded on the version: {failed})"
                else:
                    pushed |= _promote(ws, item, uri, push, dry_run)
        if pushed:
            ws.sync_user()
    return items


def stage_order(cfg, rows: list[EnvStatus]) -> list[EnvStatus]:
    """Rows sorted so that an environment comes before any environment whose gate requires it."""

    def depth(model: str, env: str, seen: frozenset = frozenset()) -> int:
        before = (cfg.model(model).gates.get("require_previous_stage") or {}).get(env)
        if not before or before in seen:
            return 0
        return 1 + depth(model, before, seen | {env})

    return sorted(rows, key=lambda r: depth(r.model, r.env) if r.model in cfg.models else 0)


def _promote(ws, item: ReconcileItem, uri: str, push: bool, dry_run: bool) -> bool:
    req = PromotionRequest(ref=f"{item.model}@{item.alias}", env=item.env, trigger="reconcile",
                           tracking_uri=uri, push=push, dry_run=dry_run)
    try:
        result = promote_in(ws, req, schema_dir=schema_dir_from_env())
    except GitopsError as exc:
        item.action, item.detail = "failed", str(exc).splitlines()[0]
        return False
    move = f"{result.from_version or 'none'} -> {result.to_version}"
    if result.pull_request:  # approval: pull_request: opened or updated, lands when a person merges it
        item.action, item.commit, item.detail = "pull-request", result.commit, f"{move}; {result.pull_request}"
        return False
    if result.commit:
        item.action, item.commit, item.detail = "promoted", result.commit, move
    elif dry_run and result.skipped == "dry run":
        gates = next((s.detail for s in result.steps if s.name == "gates"), "")
        item.action, item.detail = "would-promote", f"{move}; gates: {gates}" if gates else move
    else:
        item.action, item.detail = "skipped", result.skipped or ""
    return result.pushed


def as_json(items: list[ReconcileItem]) -> list[dict]:
    return [asdict(i) for i in items]
