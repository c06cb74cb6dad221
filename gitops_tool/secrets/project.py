"""Seal a Secret into <overlay>/sealed/ and list what each platform instance and environment needs."""

from __future__ import annotations

from pathlib import Path

from gitops_tool.config import Config
from gitops_tool.errors import GitopsError
from gitops_tool.platform.secrets import SEALED_DIR, by_method, required_secrets, secret_annotations
from gitops_tool.secrets.sealing import load_public_key, sealed_secret
from gitops_tool.yamlio import dump_docs

SEALED_HEADER = "# Made by `gitops-tool secrets seal`: encrypted for the sealed-secrets controller; safe to commit.\n"


def seal_into_project(cfg: Config, env_name: str, name: str, values: dict[str, str], cert: Path,
                      scope: str | None = None) -> Path:
    env = cfg.target(env_name)
    needed = required_secrets(cfg, env)
    if name not in needed:
        raise GitopsError(f"secret {name!r} is not one {env.label} uses (known: {', '.join(needed) or 'none'})")
    missing = [k for k in needed[name] if k not in values]
    extra = [k for k in values if k not in needed[name]]
    if missing or extra:
        raise GitopsError(f"secret {name}: keys must be exactly {', '.join(needed[name])}"
                          + (f"; missing {', '.join(missing)}" if missing else "")
                          + (f"; unexpected {', '.join(extra)}" if extra else ""))
    empty = [k for k, v in values.items() if not v]
    if empty:
        raise GitopsError(f"secret {name}: empty value for {', '.join(empty)}")
    if env.secret_method(name) != "sealed":
        field = f"platform.instances.{env.name}" if env.label != env.name else f"environments.{env.name}"
        raise GitopsError(f"{cfg.source}: {name} in {env.label} uses method {env.secret_method(name)!r}, not sealed",
                          hint=f"set {field}.secrets.method (or overrides.{name}) to sealed")
    doc = sealed_secret(load_public_key(cert), name=name, namespace=env.namespace, values=values,
                        scope=scope or env.secrets["scope"],
                        secret_annotations=secret_annotations(cfg, env, name))
    target = cfg.root / env.rel_dir / SEALED_DIR / f"{name}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(dump_docs([doc], header=SEALED_HEADER), encoding="utf-8")
    return target


def missing_sealed(cfg: Config) -> list[tuple[str, str]]:
    """(overlay label, secret) pairs whose method is sealed but whose SealedSecret file is not there yet."""
    out = []
    for env in cfg.targets():
        for name in by_method(cfg, env)["sealed"]:
            if not (cfg.root / env.rel_dir / SEALED_DIR / f"{name}.yaml").is_file():
                out.append((env.label, name))
    return out
