"""Title and body of a promotion's pull request: what a reviewer needs to decide.

The body carries the gate results, a link to the model version in the MLflow UI, what is known of
who moved the alias (and that the actor is not), and the commit's trailers as they will land.
"""

from __future__ import annotations

from urllib.parse import quote

from gitops_tool.config import Config
from gitops_tool.gitrepo import GitRepo
from gitops_tool.promotion.model import PromotionRequest, PromotionResult
from gitops_tool.promotion.provenance import ACTOR_UNKNOWN, AUTOMATIC
from gitops_tool.promotion.steps import Steps


def pr_title(result: PromotionResult) -> str:
    alias = f" (@{result.alias})" if result.alias else ""
    return f"promote({result.env}): {result.model} {result.from_version or 'none'} -> {result.to_version}{alias}"


def version_url(cfg: Config, registered_model: str, version: str) -> str | None:
    """The model version's page in the MLflow UI of the registry of record (platform.tracking_uri)."""
    base = cfg.mlflow.get("tracking_uri")
    if not base:
        inst = cfg.registry
        base = f"{'https' if inst.tls_enabled else 'http'}://{inst.host}"
    return f"{base.rstrip('/')}/#/models/{quote(registered_model, safe='')}/versions/{quote(str(version))}"


def pr_body(cfg: Config, repo: GitRepo, result: PromotionResult, req: PromotionRequest, steps: Steps) -> str:
    trailers = _trailers(repo, result.commit)
    registered = cfg.model(result.model).registered_model
    gates = next((s.detail for s in steps.items if s.name == "gates"), "") or "none configured"
    link = version_url(cfg, registered, result.to_version)
    delivered = f" at {trailers['Delivered-At']}" if "Delivered-At" in trailers else ""
    run_user = f", by {trailers['Run-User']}" if "Run-User" in trailers else ""
    actor = (ACTOR_UNKNOWN if req.trigger in AUTOMATIC
             else "the person who ran `gitops-tool promote` (the commit's author)")
    lines = [
        f"Promotes **{result.model}** in **{result.env}** from version {result.from_version or 'none'} to "
        f"**{result.to_version}**{f' (@{result.alias})' if result.alias else ''}.",
        "",
        f"- Model version: [{registered} {result.to_version}]({link})" if link else
        f"- Model version: {registered} {result.to_version}",
        f"- Image: `{result.image}`",
        f"- Gates: {gates}",
        f"- Trigger: {req.trigger}",
        "",
        "### Who moved the alias",
        "",
        f"- Actor: {actor}",
        f"- Delivery: {trailers.get('Delivery-Id') or req.delivery_id or 'none'}{delivered}",
        *([f"- Version created by: {trailers['Version-Created-By']}"] if "Version-Created-By" in trailers else []),
        f"- Run: {trailers.get('Run-Id', 'none')}{run_user}",
        "",
        "### Commit trailers",
        "",
        "```",
        *[f"{k}: {v}" for k, v in trailers.items()],
        "```",
        "",
        f"Nothing reaches `{cfg.branch}` until this pull request is merged (merge, squash or rebase: the "
        f"deployed state is read from the files). A newer move of the alias updates this pull request. "
        f"Opened by gitops-tool.",
    ]
    return "\n".join(lines)


def _trailers(repo: GitRepo, sha: str | None) -> dict[str, str]:
    if not sha:
        return {}
    res = repo._git("show", "-s", "--format=%(trailers:only,unfold)", sha)
    out = {}
    for line in res.out.splitlines() if res.ok else []:
        key, sep, value = line.partition(": ")
        if sep:
            out[key.strip()] = value.strip()
    return out
