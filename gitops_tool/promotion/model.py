"""Promotion requests, results and step statuses (Kargo-style: each step reports what it did)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

TRIGGERS = ("manual", "webhook", "reconcile", "workflow", "rollback", "release", "retire", "canary-complete",
            "canary-abort")


@dataclass(frozen=True)
class PromotionRequest:
    ref: str                           # MODEL@ALIAS, MODEL/VERSION or models:/MODEL@ALIAS
    env: str | None = None             # overrides the alias -> environment map
    image_tag: str | None = None       # overrides the image recorded on the version
    push: bool = True
    dry_run: bool = False
    pr: bool = False
    direct: bool = False               # push past approval: pull_request (refused without force)
    force: bool = False                # promote over a hold (manual only)
    tracking_uri: str | None = None
    repo_url: str | None = None        # work in a fresh shallow clone of this URL
    config_path: Path | None = None    # gitops.yaml (default: found from the cwd or the clone)
    trigger: str = "manual"
    delivery_id: str | None = None     # webhook delivery, recorded as a trailer
    event_version: str | None = None   # the version that delivery named (the alias may have moved since)
    event_timestamp: float | None = None  # when MLflow sent that delivery (the alias moved), epoch seconds
    canary: int | None = None          # start a KServe canary with this share of traffic (promotion/canary.py)
    reason: str | None = None          # why --force overrides a soak or a failed verification (a trailer)
    coalesced_deliveries: tuple[str, ...] = ()  # older deliveries of the same model+env this one replaced


@dataclass
class StepStatus:
    name: str
    status: str = "pending"            # ok | skipped | failed
    detail: str = ""
    seconds: float = 0.0


@dataclass
class PromotionResult:
    env: str
    model: str
    alias: str | None
    from_version: str | None
    to_version: str
    image: str | None
    commit: str | None = None
    pushed: bool = False
    skipped: str | None = None         # "already promoted", "held: ...", "no change", "dry run"
    pull_request: str | None = None
    kept_on: str | None = None         # --no-push: the local branch that holds the commit
    checkout: str | None = None        # what happened to the user's checkout after the push
    steps: list[StepStatus] = field(default_factory=list)
    diff: str = ""

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        head = {"env": self.env, "model": self.model, "from": self.from_version, "to": self.to_version}
        for key in ("env", "model", "from_version", "to_version"):
            data.pop(key)
        return head | data
