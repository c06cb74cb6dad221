"""`status`: per model and environment, Git's version, the registry's aliases, drift and holds."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from gitops_tool.config import Config
from gitops_tool.errors import GitopsError
from gitops_tool.kustomize.release import read_release
from gitops_tool.promotion.canary import describe as canary_text


@dataclass
class EnvStatus:
    model: str
    env: str
    git_version: str | None
    image: str | None
    hold: str | None
    cluster: str = ""                                             # the environment's Argo CD destination
    aliases: dict[str, str | None] = field(default_factory=dict)  # mapped alias -> registry version
    drift: list[str] = field(default_factory=list)                # aliases whose version is not deployed
    error: str | None = None                                      # the registry could not answer for this model
    review: str | None = None                                     # an open pull request (promotion/reviews.py)
    canary: str | None = None                                     # "canary 10% -> v3 (stable v2)" while one runs

    def to_json(self) -> dict:
        return asdict(self)


def collect(cfg: Config, client=None) -> tuple[list[EnvStatus], str | None]:
    """Rows for every model x environment; the second item is the first error of an unreachable
    registry (a retryable one), if any.

    A model the registry cannot answer for gets `error` on its rows; the other models are unaffected.
    A model the registry does not have (never registered) is that model's error, not the registry's."""
    rows, problem = [], None
    released: dict[str, dict] = {}  # env -> its release state, read once (linear in release files)
    known = _all_aliases(client, len(cfg.models))
    for model in cfg.models.values():
        registry, error = {}, None
        if client is not None:
            try:
                registry = known[model.registered_model] if model.registered_model in known else \
                    client.get_model_aliases(model.registered_model)
            except GitopsError as exc:
                error = str(exc).splitlines()[0]
                if exc.retryable:
                    problem = problem or error
        for env in cfg.environments:
            if not cfg.environments[env].may_serve(model.name):
                continue
            if env not in released:
                released[env] = read_release(cfg.env_dir(env))
            state = released[env].get(model.name)
            row = EnvStatus(model.name, env, state.version if state else None, state and (state.image or
                            state.storage_uri), state.hold if state else None, error=error,
                            cluster=cfg.environments[env].cluster.name, canary=canary_text(state))
            hand_edited = state is not None and state.edited_by_hand()
            for alias, mapped in model.aliases.items():
                if mapped != env:
                    continue
                version = registry.get(alias)
                row.aliases[alias] = version
                if version and (version != row.git_version or hand_edited):
                    row.drift.append(alias)
            rows.append(row)
    return rows, problem


def _all_aliases(client, models: int) -> dict[str, dict[str, str]]:
    """Every model's aliases from one registry search when many models are asked for (one call
    instead of one per model); {} when that is not worth it or fails: then each model is asked
    on its own, which also gives a missing model its own error."""
    if client is None or models < 5 or not hasattr(client, "search_model_aliases"):
        return {}
    try:
        return client.search_model_aliases()
    except GitopsError:
        return {}
