"""Promotion commits: the message and trailers we write, and the history we read back from them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from gitops_tool.gitrepo import CommitRecord, GitRepo

HISTORY_PATHS = ["environments"]


def subject(action: str, env: str, model: str, old: str | None, new: str, alias: str | None = None) -> str:
    text = f"{action}({env}): {model} {old or 'none'} -> {new}"
    return f"{text} (@{alias})" if alias else text


def trailers(*, model: str, env: str, version: str, previous: str | None, alias: str | None, run_id: str | None,
             image: str | None, storage_uri: str | None, trigger: str, delivery_id: str | None = None,
             hold: str | None = None, coalesced: tuple[str, ...] = ()) -> dict[str, str]:
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
    if coalesced:  # deliveries for the same model and environment that this commit enacts too (receiver queue)
        out["Coalesced-Deliveries"] = " ".join(coalesced)
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
    canary: str | None = None    # the Canary: trailer: "10%" (started), "complete" or "abort"


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
        image=_none(t.get("Image")), commit=record.sha, subject=record.subject, canary=t.get("Canary"),
    )


def history(repo: GitRepo, model: str | None = None, env: str | None = None) -> list[HistoryEntry]:
    """Promotions, rollbacks and releases, newest first, parsed from commit trailers.

    The audit view only: no decision reads it. Commits without our trailers that changed a deployed
    version (a `git revert`, a hand edit) are listed too, as trigger "git", read from the files."""
    out = []
    for record in repo.log_records(paths=HISTORY_PATHS):
        items = [entry(record)] if record.trailers.get("Model") else file_entries(repo, record)
        out += [i for i in items if i and (model is None or i.model == model) and (env is None or i.env == env)]
    return out


_RELEASE_FILE = re.compile(r"^environments/(?P<env>[^/]+)/release/(?P<model>[^/]+)\.yaml$")


def file_entries(repo: GitRepo, record: CommitRecord) -> list[HistoryEntry]:
    """Version changes a commit without trailers made, read from the release files it touched."""
    changed = repo._git("diff-tree", "--no-commit-id", "--name-only", "-r", "--root", record.sha)
    out = []
    for path in changed.out.split("\n") if changed.ok else []:
        match = _RELEASE_FILE.match(path)
        if not match or match["model"] == "kustomization":
            continue
        old, new = _version_at(repo, f"{record.sha}^", path), _version_at(repo, record.sha, path)
        if new and old != new:
            out.append(HistoryEntry(time=record.timestamp, env=match["env"], model=match["model"],
                                    from_version=old, to_version=new, alias=None, trigger="git", image=None,
                                    commit=record.sha, subject=record.subject))
    return out


def _version_at(repo: GitRepo, rev: str, path: str) -> str | None:
    import yaml

    from gitops_tool.kustomize.release import VERSION_ANNOTATION

    res = repo._git("show", f"{rev}:{path}")
    if not res.ok:
        return None
    try:
        doc = yaml.safe_load(res.out) or {}
        value = ((doc.get("metadata") or {}).get("annotations") or {}).get(VERSION_ANNOTATION)
    except (yaml.YAMLError, AttributeError):
        return None
    return None if value is None else str(value)
