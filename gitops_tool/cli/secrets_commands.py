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
    out(f"sealed {name} for {cfg.env(env).namespace}: {target.relative_to(cfg.root)}")
    for action in generate_from(cfg).changed:
        out(f"{action.action:>9}  {action.path}")
    return 0


def htpasswd(*, user: str, password: str, algorithm: str) -> int:
    from gitops_tool.secrets.htpasswd import entry

    out(entry(user, password, algorithm=algorithm))
    return 0


def list_secrets(*, config: str | None, output: str = "text") -> int:
    from gitops_tool.platform.common import SECRETS
    from gitops_tool.platform.secrets import required_secrets

    cfg = load_config(Path(config) if config else find_config())
    if output == "json":
        out_json({"ok": True, "secrets": [
            {"name": name, "keys": list(keys), "used_by": SECRETS[name]["used_by"],
             "methods": {env.name: env.secret_method(name) for env in cfg.environments.values()}}
            for name, keys in required_secrets(cfg).items()]})
        return 0
    for name, keys in required_secrets(cfg).items():
        methods = ", ".join(f"{env.name}={env.secret_method(name)}" for env in cfg.environments.values())
        out(f"{name:<24} keys: {', '.join(keys):<42} {methods}   ({SECRETS[name]['used_by']})")
    return 0
