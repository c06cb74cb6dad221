"""Each command is a plain function returning an exit code; cli/main.py wires them to click."""

from __future__ import annotations

from pathlib import Path

from gitops_tool.cli.output import err, out, out_json
from gitops_tool.config import find_config, load_config
from gitops_tool.errors import GitopsError, UsageError


def _config_path(path: str | None) -> Path:
    return Path(path) if path else find_config()


def init(directory: str, repo_url: str | None, *, registry: str | None = None, domain: str | None = None,
         prod_cluster: str | None = None, prod_approval: str | None = None, output: str = "text") -> int:
    from gitops_tool.project import init_project

    try:
        result = init_project(Path(directory), repo_url=repo_url, registry=registry, domain=domain,
                              prod_cluster=prod_cluster, prod_approval=prod_approval)
    except GitopsError as exc:
        if "repo.github_repository" in str(exc) and not exc.hint:
            exc.hint = "or run init with --prod-approval direct (prod then takes promotions without review)"
        raise
    if output == "json":
        out_json({"ok": True, "config": str(Path(directory) / "gitops.yaml"), "files": _actions_json(result.actions),
                  "next": f"cd {directory} && gitops-tool validate"})
        return 0
    out(f"{'create':>9}  gitops.yaml")
    _report(result.actions)
    out(f"\nNext: cd {directory} && gitops-tool validate")
    return 0


def generate(config_path: str | None, *, check: bool, dry_run: bool, prune: bool = False,
             output: str = "text") -> int:
    from gitops_tool.project import generate as run

    result = run(_config_path(config_path), write=not (check or dry_run), prune=prune)
    drift = check and bool(result.changed)
    if output == "json":
        out_json({"ok": not drift, "written": not (check or dry_run), "changed": [a.path for a in result.changed],
                  "files": _actions_json(result.actions)})
        return 1 if drift else 0
    if check:
        for action in result.changed:
            out(action.diff())
        if result.changed:
            err(f"drift: {len(result.changed)} file(s) differ from gitops.yaml; run `gitops-tool generate`")
            return 1
        out("no drift: the tree matches gitops.yaml")
        return 0
    _report(result.actions)
    return 0


def _actions_json(actions) -> list[dict]:
    return [{"path": a.path, "action": a.action} for a in actions if a.action != "keep"]


def _report(actions) -> None:
    for action in actions:
        if action.action != "keep":
            out(f"{action.action:>9}  {action.path}")


def render(config_path: str | None, env: str) -> int:
    from gitops_tool.kustomize.render import render as kustomize

    cfg = load_config(_config_path(config_path))
    try:
        target = cfg.target(env)
    except GitopsError as exc:
        raise UsageError(str(exc.args[0]), hint=exc.hint) from None  # ENV is a command-line argument
    out(kustomize(cfg.root / target.rel_dir).rstrip("\n"))
    return 0


def validate(config_path: str | None, envs: list[str], schema_dir: str | None, *, allow_unchecked: bool,
             strict: bool = False, output: str = "text") -> int:
    from gitops_tool.validate import UNCHECKED, WARNING, validate_all
    from gitops_tool.validate.placeholders import placeholder_findings

    cfg = load_config(_config_path(config_path))
    names = envs or [t.label for t in cfg.targets()]
    dirs = {name: cfg.root / cfg.target(name).rel_dir for name in names}
    if not envs:  # the whole tree: the Argo CD objects too
        dirs["argocd"] = cfg.root / "argocd"
    findings = placeholder_findings(cfg)
    findings += validate_all(dirs, schema_dir=Path(schema_dir) if schema_dir else None)
    findings += _secret_findings(cfg, names, scoped=bool(envs))
    count = {s: sum(f.severity == s for f in findings) for s in ("error", UNCHECKED, WARNING)}
    failed = bool(count["error"]) or (bool(count[UNCHECKED]) and not allow_unchecked) or (
        strict and bool(count[WARNING]))
    if output == "json":
        out_json({"ok": not failed, "checked": list(dirs), "errors": count["error"], "unchecked": count[UNCHECKED],
                  "warnings": count[WARNING], "strict": strict,
                  "findings": [vars(f) | {"text": str(f)} for f in findings]})
        return 1 if failed else 0
    for finding in findings:
        out(f"{finding}" if finding.severity != WARNING else f"warning: {finding}")
    out(f"{'FAILED' if failed else 'ok'}: {', '.join(dirs)}: {count['error']} error(s), "
        f"{count[UNCHECKED]} unchecked, {count[WARNING]} warning(s){' (--strict)' if strict else ''}")
    if count[UNCHECKED] and not allow_unchecked:
        err("hint: unchecked kinds have no schema: `gitops-tool schemas pull --out schemas` writes the cluster's, "
            "then `gitops-tool validate --schema-dir schemas`; or pass --allow-unchecked")
    if count[WARNING] and not strict:
        err("hint: placeholders break a real sync; `gitops-tool validate --strict` fails on them")
    return 1 if failed else 0


def _secret_findings(cfg, envs: list[str], *, scoped: bool = False) -> list:
    """Sealed Secrets that the config expects but nobody sealed yet, and secret-shaped text in the tree.

    ``scoped`` (validate ENV...): only what those overlays read, their folders, base/ and gitops.yaml."""
    from gitops_tool.secrets.project import missing_sealed
    from gitops_tool.validate import Finding, scan_tree

    findings = [Finding(env, "SealedSecret", name, f"sealed/{name}.yaml",
                        f"missing: run `gitops-tool secrets seal --env {env} --name {name} --cert CERT.pem`")
                for env, name in missing_sealed(cfg) if env in envs]
    findings += [Finding("tree", "File", hit.source, f"line {hit.line}", f"{hit.rule}: {hit.excerpt}")
                 for hit in scan_tree(cfg.root, _scan_scope(cfg, envs) if scoped else None)]
    return findings


def _scan_scope(cfg, envs: list[str]) -> list[str]:
    config = Path(cfg.source).resolve()
    scope = [cfg.target(name).rel_dir for name in envs] + ["base"]
    return scope + ([config.relative_to(cfg.root.resolve()).as_posix()] if config.is_relative_to(cfg.root.resolve())
                    else [])
