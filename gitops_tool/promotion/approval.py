"""Which way a promotion goes: straight to the branch, or through a reviewed pull request.

`environments.<env>.approval` (config/approval.py) decides for every trigger alike: the webhook
receiver, reconcile, the workflow and the CLI. Only a person at the CLI may push past a
pull_request environment, with `--direct --force`, and the commit then says so in a trailer.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from gitops_tool.config import Config
from gitops_tool.errors import GitopsError
from gitops_tool.promotion.model import PromotionRequest

BYPASS_TRAILER = "Approval-Bypassed"


@dataclass(frozen=True)
class Route:
    pull_request: bool
    trailers: dict[str, str] = field(default_factory=dict)  # recorded on the commit


def route(cfg: Config, env: str, req: PromotionRequest) -> Route:
    if req.pr:
        return Route(pull_request=True)
    environment = cfg.env(env)
    if environment.approval != "pull_request":
        return Route(pull_request=False)
    if not req.direct:
        return Route(pull_request=True)
    if req.trigger != "manual" or not req.force:
        raise GitopsError(
            f"{cfg.source}: environments.{env}.approval is pull_request: promotions into {env} need a reviewed "
            f"pull request, so --direct is refused; nothing committed",
            hint=f"drop --direct to open (or update) the pull request, or add --force to push to {cfg.branch} "
                 f"without review (the commit records the bypass)")
    return Route(pull_request=False, trailers={
        BYPASS_TRAILER: f"promote --direct --force; environments.{env}.approval is pull_request, so this commit "
                        f"reached {cfg.branch} without a reviewed pull request"})
