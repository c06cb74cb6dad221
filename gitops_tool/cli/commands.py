"""Each command is a plain function returning an exit code; cli/main.py wires them to click."""

from __future__ import annotations

from pathlib import Path

from gitops_tool.cli.output import err, out
from gitops_tool.config import find_config, load_config
from gitops_tool.errors import GitopsError, UsageError


def _config_path(path: str | None) -> Path:
    return Path(path) if path else find_config()


def init(directory: str, repo_url: str | None) -> int:
    from gitops_tool.project import init_project

    result = init_project(Path(directory), repo_url=repo_url)
    out(f"{'create':>9}  gitops.yaml")
    _report(result.actions)
    out(f"\nNext: cd {directory} && gitops-tool validate")
    return 0


def generate(config_path: str | None, *, check: bool, dry_run: bool, prune: bool = False) -> int:
    from gitops_tool.project import generate as run

    result = run(_config_path(config_path), write=not (check or dry_run), prune=prune)
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


def _report(actions) -> None:
    for action in actions:
        if action.action != "keep":
            out(f"{action.action:>9}  {action.path}")


def render(config_path: str | None, env: str) -> int:
    from gitops_tool.kustomize.render import render as kustomize

    cfg = load_config(_config_path(config_path))
    try:
        cfg.env(env)
    except GitopsError as exc:
        raise UsageError(str(exc.args[0]), hint=exc.hint) from None  # ENV is a command-line argument
    out(kustomize(cfg.env_dir(env)).rstrip("\n"))
    return 0


def validate(config_path: str | None, envs: list[str], schema_dir: str | None, *, allow_unchecked: bool) -> int:
    from gitops_tool.validate import validate_all

    cfg = load_config(_config_path(config_path))
    names = envs or list(cfg.environments)
    dirs = {name: cfg.env_dir(cfg.env(name).name) for name in names}
    if not envs:  # the whole tree: the Argo CD objects too
        dirs["argocd"] = cfg.root / "argocd"
    findings = validate_all(dirs, schema_dir=Path(schema_dir) if schema_dir else None)
    findings += _secret_findings(cfg, names)
    errors = [f for f in findings if f.severity == "error"]
    unchecked = [f for f in findings if f.severity != "error"]
    for finding in findings:
        out(str(finding))
    failed = bool(errors) or (bool(unchecked) and not allow_unchecked)
    out(f"{'FAILED' if failed else 'ok'}: {', '.join(dirs)}: {len(errors)} error(s), "
        f"{len(unchecked)} unchecked")
    return 1 if failed else 0


def _secret_findings(cfg, envs: list[str]) -> list:
    """Sealed Secrets that the config expects but nobody sealed yet, and secret-shaped text in the tree."""
    from gitops_tool.secrets.project import missing_sealed
    from gitops_tool.validate import Finding, scan_tree

    findings = [Finding(env, "SealedSecret", name, f"sealed/{name}.yaml",
                        f"missing: run `gitops-tool secrets seal --env {env} --name {name} --cert CERT.pem`")
                for env, name in missing_sealed(cfg) if env in envs]
    findings += [Finding("tree", "File", hit.source, f"line {hit.line}", f"{hit.rule}: {hit.excerpt}")
                 for hit in scan_tree(cfg.root)]
    return findings
