"""Job handlers for the two modes: GitHub repository_dispatch, or the promotion engine in-process."""

from __future__ import annotations

import requests

from gitops_tool.errors import GitopsError
from gitops_tool.webhook.jobs import Handler, Job, Outcome
from gitops_tool.webhook.settings import ReceiverSettings

EVENT_TYPE = "mlflow-model-alias"
_RETRY_STATUS = {408, 429, 500, 502, 503, 504}


def dispatch_payload(job: Job) -> dict[str, object]:
    payload: dict[str, object] = {"model": job.model, "alias": job.alias, "version": job.version,
                                  "delivery_id": job.delivery_id, "environment": job.env}
    if job.superseded:  # older deliveries of the pair this dispatch stands for (receiver queue)
        payload["coalesced_deliveries"] = list(job.superseded)
    return {"event_type": EVENT_TYPE, "client_payload": payload}


def dispatch_handler(settings: ReceiverSettings, timeout: float = 15.0) -> Handler:
    """POST {api}/repos/{owner}/{repo}/dispatches; a workflow in the GitOps repo promotes."""
    url = f"{settings.github_api_url.rstrip('/')}/repos/{settings.github_repo}/dispatches"
    session = requests.Session()
    session.headers.update({"Authorization": f"Bearer {settings.token()}",
                            "Accept": "application/vnd.github+json",
                            "X-GitHub-Api-Version": "2022-11-28"})

    def handle(job: Job) -> Outcome:
        try:
            resp = session.post(url, json=dispatch_payload(job), timeout=timeout)
        except requests.RequestException as exc:
            raise GitopsError(f"repository_dispatch to {url} failed: {exc}", retryable=True) from None
        if resp.status_code in (200, 201, 204):
            return Outcome("dispatched", f"{settings.github_repo} {EVENT_TYPE}")
        hint = {401: "GITHUB_TOKEN is invalid or expired",
                403: "the token lacks contents:write on the repository (or hit a rate limit)",
                404: "repository not found, or the token cannot see it",
                422: "GitHub refused the payload"}.get(resp.status_code)
        raise GitopsError(
            f"repository_dispatch to {url} answered HTTP {resp.status_code}: {resp.text[:200]}",
            retryable=resp.status_code in _RETRY_STATUS, hint=hint)

    return handle


def promote_handler(settings: ReceiverSettings) -> Handler:
    """Run the promotion engine for each job in a warm clone of ``repo_url`` (gitrepo.warm)."""
    from gitops_tool.webhook.clones import receiver_clone_pool

    clones = receiver_clone_pool(settings)

    def handle(job: Job) -> Outcome:
        from gitops_tool.promotion.engine import promote  # heavy (git, registry): load on first job
        from gitops_tool.promotion.model import PromotionRequest

        result = promote(PromotionRequest(
            ref=f"{job.model}@{job.alias}", repo_url=settings.repo_url, trigger="webhook",
            delivery_id=job.delivery_id, event_version=job.version, tracking_uri=settings.tracking_uri,
            event_timestamp=job.event_timestamp, coalesced_deliveries=tuple(job.superseded)),
            branch=settings.branch, clones=clones)
        steps = {step.name: step.seconds for step in result.steps}
        if result.skipped or not result.commit:
            return Outcome("skipped", result.skipped or "no commit", steps=steps)
        if result.pull_request:  # approval: pull_request: nothing landed on the branch
            return Outcome("committed", f"{result.model} {result.from_version} -> {result.to_version} in pull "
                                        f"request {result.pull_request}", commit=result.commit, steps=steps)
        push = next((s.detail for s in result.steps if s.name == "commit+push"), "")
        return Outcome("committed", f"{result.model} {result.from_version} -> {result.to_version} "
                       f"({push.split(' ', 1)[-1]})", commit=result.commit, steps=steps)

    return handle


def build_handler(settings: ReceiverSettings) -> Handler:
    return dispatch_handler(settings) if settings.mode == "dispatch" else promote_handler(settings)
