"""Promotion commits: the message and trailers we write, and the history we read back from them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from gitops_tool.gitrepo import CommitRecord, GitRepo

HISTORY_PATHS = ["environments"]


def subject(action: str, env: str, model: str, old: str | None, new: str, alias: str | None = None) -> str:
    text = f"{action}({env}): {model} {old or 'none'} -> {new}"
    return f"{text} (@{alias})" if alias else text


def trailers(*, model: str, env: str, version: str, previous: str | None, alias: str | None, run_id: str | None,
             image: str | None, storage_uri: str | None, trigger: str, delivery_id: str | None = None,
             hold: str | None = None) -> dict[str, str]:
    out = {
        "Model": model,
        "Environment": env,
        "Model-Version": version,
        "Previous-Version": previous or "none",
        "Alias": f"@{alias}" if alias else "none",
        "Run-Id": run_id or "none",
        "Image": image or (storage_uri and f"storage {storage_uri}") or "none",
        "Trigger": trigger,
    }
    if delivery_id:
        out["Delivery-Id"] = delivery_id
    if hold:
        out["Hold"] = hold
    return out


@dataclass(frozen=True)
class HistoryEntry:
    time: datetime
    env: str
    model: str
    from_version: str | None
    to_version: str
    alias: str | None
    trigger: str
    image: str | None
    commit: str
    subject: str


def _none(value: str | None) -> str | None:
    return None if value in (None, "", "none") else value


def entry(record: CommitRecord) -> HistoryEntry | None:
    t = record.trailers
    if not (t.get("Model") and t.get("Environment") and t.get("Model-Version")):
        return None
    alias = _none(t.get("Alias"))
    return HistoryEntry(
        time=record.timestamp, env=t["Environment"], model=t["Model"],
        from_version=_none(t.get("Previous-Version")), to_version=t["Model-Version"],
        alias=alias.lstrip("@") if alias else None, trigger=t.get("Trigger", "unknown"),
        image=_none(t.get("Image")), commit=record.sha, subject=record.subject,
    )


def history(repo: GitRepo, model: str | None = None, env: str | None = None) -> list[HistoryEntry]:
    """Promotions, rollbacks and releases, newest first, parsed from commit trailers."""
    out = []
    for record in repo.log_records(paths=HISTORY_PATHS):
        item = entry(record)
        if item and (model is None or item.model == model) and (env is None or item.env == env):
            out.append(item)
    return out


def versions_run_in(repo: GitRepo, model: str, env: str) -> set[str]:
    return {h.to_version for h in history(repo, model, env)}


def image_of(repo: GitRepo, model: str, version: str) -> str | None:
    """The image a version was last deployed with, in any environment (used by rollback)."""
    for item in history(repo, model):
        if item.to_version == version and item.image and not item.image.startswith("storage "):
            return item.image
    return None
