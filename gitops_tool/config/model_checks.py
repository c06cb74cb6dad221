"""Load-time checks of one `models.<name>` entry that the JSON Schema cannot express.

`check_model(name, spec, envs, where)` raises GitopsError naming the file and field; build_config
calls it for every model before building the Model.
"""

from __future__ import annotations

from typing import Callable, Iterable

from gitops_tool.errors import GitopsError

RESERVED_ALIASES = ("latest",)  # MLflow resolves models:/name@latest itself; it cannot be set as an alias


def check_model(name: str, spec: dict, envs: Iterable[str], where: Callable) -> None:
    _aliases(name, spec.get("aliases") or {}, where)
    gates = spec.get("gates") or {}
    _rules(name, gates, where)


def _aliases(name: str, aliases: dict, where: Callable) -> None:
    seen: dict[str, str] = {}
    for alias, env in aliases.items():
        if str(alias).lower() in RESERVED_ALIASES:
            raise GitopsError(f"{where(['models', name, 'aliases', alias])}: alias {alias!r} is reserved by MLflow "
                              f"(models:/{name}@latest always means the newest version); pick another name")
        if env in seen:
            raise GitopsError(
                f"{where(['models', name, 'aliases', alias])}: aliases {seen[env]!r} and {alias!r} both map to "
                f"environment {env!r}; each environment of a model follows exactly one alias "
                f"(two would flip it between their versions on every reconcile)")
        seen[env] = alias


def _rules(name: str, gates: dict, where: Callable) -> None:
    from gitops_tool.promotion.gates import parse_rule

    for i, rule in enumerate(gates.get("metrics") or []):
        try:
            parse_rule(rule)
        except GitopsError as exc:
            raise GitopsError(f"{where(['models', name, 'gates', 'metrics', i])}: {exc}") from None
