"""promote, rollback, release, history and status: plain functions returning an exit code."""

from __future__ import annotations

import json
import os
from pathlib import Path

from gitops_tool.cli.output import err, out
from gitops_tool.promotion.model import PromotionRequest, PromotionResult


def promote(req: PromotionRequest, *, output: str, branch: str | None = None) -> int:
    from gitops_tool.promotion.engine import promote as run

    return _report(run(req, branch=branch), output)


def rollback(model: str, env: str, to: str | None, *, config: str | None, push: bool, output: str,
             tracking_uri: str | None, dry_run: bool = False) -> int:
    from gitops_tool.promotion.holds import rollback as run

    result = run(model, env, to, config_path=Path(config) if config else None, push=push, tracking_uri=tracking_uri,
                 dry_run=dry_run)
    code = _report(result, output)
    if output == "text" and result.commit:
        out(f"hold placed: automatic promotions skip {model} in {env} until "
            f"`gitops-tool release {model} --env {env}`")
    return code


def release(model: str, env: str, *, config: str | None, push: bool, output: str, dry_run: bool = False) -> int:
    from gitops_tool.promotion.holds import release as run

    return _report(run(model, env, config_path=Path(config) if config else None, push=push, dry_run=dry_run), output)


def retire(model: str, env: str, *, config: str | None, push: bool, output: str, dry_run: bool = False) -> int:
    from gitops_tool.promotion.retire import retire as run

    return _report(run(model, env, config_path=Path(config) if config else None, push=push, dry_run=dry_run), output)


def _report(result: PromotionResult, output: str) -> int:
    _step_summary(result)
    for step in result.steps:  # only the after-push steps can fail without failing the promotion
        if step.status == "failed":
            err(f"warning: {step.name} failed: {step.detail} (the promotion itself went through)")
    if output == "json":
        data = result.to_json()
        data.pop("steps")
        data["steps"] = [{"name": s.name, "status": s.status, "detail": s.detail, "seconds": s.seconds}
                         for s in result.steps]
        out(json.dumps(data, indent=2))
        return 0
    for step in result.steps:
        out(f"  {step.status:<8} {step.name:<24} {step.seconds:6.2f}s  {step.detail}")
    head = f"{result.model} {result.from_version or 'none'} -> {result.to_version} in {result.env}"
    if result.skipped:
        out(f"{result.skipped}: {head}; no commit")
        if result.diff:
            out(result.diff.rstrip("\n"))
        return 0
    where = "pushed" if result.pushed else ("already on the pull request's branch" if result.pull_request
                                            else "committed, not pushed")
    out(f"{head}: {where} {result.commit}")
    if result.kept_on:
        out(f"kept on local branch {result.kept_on}; publish it with "
            f"`git push <remote> {result.kept_on}:<branch>` or discard it with `git branch -D {result.kept_on}`")
    elif result.commit and not result.pushed and not result.pull_request:
        out("the commit was made in a temporary clone and is not kept (--no-push with --repo-url)")
    if result.checkout:
        out(result.checkout)
    if result.pull_request:
        out(f"pull request: {result.pull_request}")
    if result.diff:
        out(result.diff.rstrip("\n"))
    return 0


def _step_summary(result: PromotionResult) -> None:
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    outcome = result.skipped or (f"`{result.commit[:12]}`" if result.commit else "no commit")
    if result.pull_request and not result.skipped:
        outcome = f"pull request {result.pull_request} (lands when merged)"
    lines = [
        f"### gitops-tool: {result.model} in {result.env}",
        "",
        "| from | to | image | result |",
        "| --- | --- | --- | --- |",
        f"| {result.from_version or 'none'} | {result.to_version} | `{result.image}` | {outcome} |",
        "",
    ]
    with open(path, "a", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


def history(model: str, env: str | None, *, config: str | None, output: str) -> int:
    from gitops_tool.promotion.commits import history as read
    from gitops_tool.promotion.workspace import open_workspace

    with open_workspace(Path(config) if config else None) as ws:
        ws.cfg.model(model)
        if env:
            ws.cfg.env(env)
        entries = read(ws.repo, model, env)
    if output == "json":
        out(json.dumps([{**e.__dict__, "time": e.time.isoformat()} for e in entries], indent=2))
        return 0
    if not entries:
        out(f"no promotions of {model}{f' in {env}' if env else ''} yet")
    for e in entries:
        alias = f"@{e.alias}" if e.alias else "-"
        out(f"{e.time:%Y-%m-%d %H:%M:%S}Z  {e.env:<10} {e.from_version or 'none':>5} -> {e.to_version:<5} "
            f"{alias:<12} {e.trigger:<10} {e.commit[:12]}{f'  canary {e.canary}' if e.canary else ''}")
    return 0


def status(*, config: str | None, output: str, tracking_uri: str | None) -> int:
    from gitops_tool.promotion.reviews import mark_pending_reviews
    from gitops_tool.promotion.status import collect
    from gitops_tool.promotion.tip_view import open_tip_view
    from gitops_tool.registry import RegistryClient, resolve_tracking_uri

    with open_tip_view(Path(config) if config else None) as ws:  # the remote's tip, not the working tree
        uri = resolve_tracking_uri(tracking_uri, ws.cfg.mlflow.get("tracking_uri"))
        with RegistryClient(uri, retries=1, timeout=5) as client:
            rows, problem = collect(ws.cfg, client)
        github_problem = mark_pending_reviews(ws.cfg, rows)
    if output == "json":
        out(json.dumps({"rows": [r.to_json() for r in rows], "registry_error": problem,
                        "registry_reachable": problem is None, "github_error": github_problem}, indent=2))
    else:
        out(f"registry of record: {ws.cfg.registry.label} ({uri})")
        if problem:  # unknown, not unset: `-` would read as "never set" and DRIFT as "no"
            out(f"registry unreachable ({uri}): {problem}")
        out(f"{'MODEL':<18} {'ENV':<10} {'CLUSTER':<12} {'GIT':>5}  {'REGISTRY ALIASES':<28} {'DRIFT':<7} HOLD/CANARY")
        for r in rows:
            unknown = "?" if r.error else "-"  # unknown, not unset, where the registry could not answer
            aliases = ", ".join(f"@{a}={v or unknown}" for a, v in r.aliases.items()) or "-"
            drift = "yes" if r.drift else ("unknown" if r.error else "no")
            out(f"{r.model:<18} {r.env:<10} {r.cluster:<12} {r.git_version or '-':>5}  {aliases:<28} {drift:<7} "
                f"{'; '.join(filter(None, [r.hold, r.canary])) or '-'}{f'  {r.review}' if r.review else ''}")
        if github_problem:
            err(f"GitHub: {github_problem}; which promotions wait for review is unknown")
        if problem:
            err(f"registry: {problem}")
        for model, error in sorted({(r.model, r.error) for r in rows if r.error and r.error != problem}):
            err(f"{model}: {error}")
    return 1 if problem else 0


def reconcile(*, config: str | None, repo_url: str | None, branch: str | None, tracking_uri: str | None,
              dry_run: bool, push: bool, output: str) -> int:
    from gitops_tool.promotion.reconcile import as_json, reconcile as run

    items = run(config_path=Path(config) if config else None, repo_url=repo_url, branch=branch,
                tracking_uri=tracking_uri, dry_run=dry_run, push=push)
    failed = [i for i in items if i.action == "failed"]
    if output == "json":
        out(json.dumps({"ok": not failed, "items": as_json(items), "failed": len(failed),
                        "in_sync": all(i.action in ("in-sync", "held", "skipped") for i in items)}, indent=2))
    else:
        for i in items:
            out(f"{i.action:<14} {i.model}@{i.alias} -> {i.env}: registry {i.registry_version or '-'}, "
                f"git {i.git_version or '-'}{f'  ({i.detail})' if i.detail else ''}")
        if not items:
            out("nothing to reconcile: no model has a mapped alias")
    return 1 if failed else 0
