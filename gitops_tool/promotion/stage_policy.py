"""What the engine asks before a promotion beyond its gates: canary input, a running canary, soak, verify.

engine.py calls `check_request` (bad input, before anything else), `hold_back` (after the hold and
"already promoted" checks) and `message` (the commit's canary and --force trailers). Soak and the
upstream environment's verify checks apply to every trigger; a soak not yet served makes automatic
triggers skip (reconcile promotes once it has) and manual ones fail; `--force --reason TEXT` overrides
both and the commit records the reason.
"""

from __future__ import annotations

from gitops_tool.errors import GitopsError
from gitops_tool.promotion import canary, soak, stage_tags
from gitops_tool.promotion.model import PromotionRequest

AUTOMATIC = ("webhook", "reconcile", "workflow")


def check_request(cfg, target, current, req: PromotionRequest) -> None:
    canary.check_request(cfg, target.env, target.model.name, current, req)


def hold_back(cfg, target, current, req: PromotionRequest, steps=None) -> str | None:
    """A reason to skip (automatic triggers), None to go on; raises where a manual promotion must stop."""
    if req.canary is None and (reason := canary.while_running(current, req, target.model.name, target.env)):
        return reason
    if steps is None or not _applies(cfg, target):  # the step is listed only where soak or verify applies
        return _soak_and_verify(cfg, target, req)[0]
    with steps.run("soak+verify") as step:
        reason, notes = _soak_and_verify(cfg, target, req)
        step.detail = reason or "; ".join(notes) or "none configured"
        if reason:
            step.status = "skipped"
    return reason


def _applies(cfg, target) -> bool:
    up = soak.upstream(target.model, target.env)
    return bool(up and (cfg.environments[up].soak_seconds or cfg.environments[up].verify is not None))


def _soak_and_verify(cfg, target, req: PromotionRequest) -> tuple[str | None, list[str]]:
    model, env, version = target.model, target.env, target.version.version
    notes = []
    short = soak.shortfall(cfg, model, env, version)
    if short:
        if req.trigger in AUTOMATIC or not req.force:  # blocked (an override, or bad input, records nothing)
            stage_tags.note(model.registered_model, version, env, "soak_blocked", reason=short)
        if req.trigger in AUTOMATIC:
            return f"soaking: {short}", notes
        _overridable(short, req, model.name, env)
        notes.append(f"soak overridden ({short})")
    elif soak.upstream(model, env) and cfg.environments[soak.upstream(model, env)].soak_seconds:
        notes.append(f"soaked in {soak.upstream(model, env)}")
    up = soak.upstream(model, env)
    if up and cfg.environments[up].verify is not None:
        from gitops_tool.promotion.verify import failed_checks

        failed = failed_checks(cfg.environments[up], model.name)
        if failed:
            if req.trigger in AUTOMATIC or not req.force:
                stage_tags.note(model.registered_model, version, up, "verification_failed", reason=failed,
                                next_stage=env)
            _overridable(f"verify {up}: {failed}", req, model.name, env)
            notes.append(f"verify {up} overridden ({failed})")
        else:
            notes.append(f"verify {up}: {len(cfg.environments[up].verify.checks)} check(s) hold")
    return None, notes


def _overridable(why: str, req: PromotionRequest, model: str, env: str) -> None:
    if not req.force:
        raise GitopsError(f"{model} cannot enter {env} yet: {why}; nothing committed",
                          hint="wait, or override with --force --reason TEXT (the commit records the reason)")
    if not req.reason:
        raise GitopsError(f"--force over a soak or a failed verification needs --reason TEXT (recorded in the "
                          f"commit); {model} -> {env}: {why}; nothing committed")


def message(req: PromotionRequest, subject: str, body: str, trailers: dict[str, str]) -> tuple[str, str, dict]:
    subject, trailers = canary.message(req, subject, trailers)
    if req.force and req.reason:
        trailers = trailers | {"Forced": req.reason}
        body = "\n".join(filter(None, [body, f"Forced: {req.reason}"]))
    return subject, body, trailers

