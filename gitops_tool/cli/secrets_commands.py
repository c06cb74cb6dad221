"""secrets seal / htpasswd / list: plain functions returning an exit code."""

from __future__ import annotations

from pathlib import Path

from gitops_tool.cli.output import out, out_json
from gitops_tool.config import find_config, load_config
from gitops_tool.errors import GitopsError


def seal(*, config: str | None, env: str, name: str, cert: str, env_file: str | None, literals: tuple[str, ...],
         scope: str | None) -> int:
    from gitops_tool.project import generate_from
    from gitops_tool.secrets.project import seal_into_project
    from gitops_tool.secrets.sealing import read_env_file

    cfg = load_config(Path(config) if config else find_config())
    values = read_env_file(Path(env_file)) if env_file else {}
    for item in literals:
        key, sep, value = item.partition("=")
        if not sep:
            raise GitopsError(f"--from-literal {key!r}: expected KEY=VALUE")
        values[key] = value
    if not values:
        raise GitopsError("nothing to seal: give --from-env-file FILE (or --from-literal KEY=VALUE)")
    target = seal_into_project(cfg, env, name, values, Path(cert), scope)
    out(f"sealed {name} for {cfg.target(env).namespace}: {target.relative_to(cfg.root)}")
    for action in generate_from(cfg).changed:
        out(f"{action.action:>9}  {action.path}")
    return 0


def htpasswd(*, user: str, password: str, algorithm: str) -> int:
    from gitops_tool.secrets.htpasswd import entry

    out(entry(user, password, algorithm=algorithm))
    return 0


def list_secrets(*, config: str | None, output: str = "text") -> int:
    from gitops_tool.platform.secrets import required_secrets, secret_purpose

    cfg = load_config(Path(config) if config else find_config())
    if output == "json":
        out_json({"ok": True, "secrets": [
            {"target": target.label, "name": name, "keys": list(keys), "used_by": secret_purpose(name),
             "method": target.secret_method(name)}
            for target in cfg.targets() for name, keys in required_secrets(cfg, target).items()]})
        return 0
    for target in cfg.targets():
        for name, keys in required_secrets(cfg, target).items():
            out(f"{target.label:<20} {name:<24} {target.secret_method(name):<9} keys: {', '.join(keys):<42} "
                f"({secret_purpose(name)})")
    return 0
