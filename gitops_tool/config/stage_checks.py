"""`environments.<env>.soak` and `environments.<env>.verify`: parsed and checked at load.

Both describe what a version must show in this environment before the next stage of a model's chain
(gates.require_previous_stage) takes it; verify also guards the completion of a canary here.
Every PromQL expression is parsed by `promtool check rules` (the Debian prometheus package's promtool
has no expression-only check; `promtool query` needs a server), so a typo fails `validate` and every
command that loads gitops.yaml, not the first promotion that needs it.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from gitops_tool.errors import GitopsError

Where = Callable[[list], str]
ON_FAIL = ("abort", "abort_and_move_alias")
_DURATION = re.compile(r"^(?:(?P<d>\d+)d)?(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s)?$")
_UNIT = {"d": 86400, "h": 3600, "m": 60, "s": 1}
# Placeholders a query may use; promtool sees them replaced by these sample values.
PLACEHOLDERS = {"$namespace": "models-env", "$model": "model", "$window": "5m"}


@dataclass(frozen=True)
class Check:
    name: str
    query: str
    window: str
    window_seconds: int
    max: float | None = None
    min: float | None = None

    def bound_text(self) -> str:
        parts = ([f"<= {self.max:g}"] if self.max is not None else []) + (
            [f">= {self.min:g}"] if self.min is not None else [])
        return " and ".join(parts)


@dataclass(frozen=True)
class Verify:
    checks: tuple[Check, ...]
    on_fail: str = "abort"
    prometheus_url: str | None = None   # $GITOPS_TOOL_PROMETHEUS_URL wins (promotion/verify.py)


def parse_duration(value: object) -> int | None:
    """Seconds in a Prometheus-style duration (`30m`, `1h30m`, `2d`, `45s`); None when it is not one."""
    match = _DURATION.match(value) if isinstance(value, str) and value else None
    if not match:
        return None
    return sum(int(n) * _UNIT[unit] for unit, n in match.groupdict().items() if n)


def duration(value: object, path: list, where: Where) -> int:
    seconds = parse_duration(value)
    if seconds is None:
        raise GitopsError(f"{where(path)}: {value!r} is not a duration; write e.g. 30m, 1h, 1h30m, 2d or 45s")
    return seconds


def soak_seconds(spec: dict, path: list, where: Where) -> int | None:
    return duration(spec["soak"], path + ["soak"], where) if "soak" in spec else None


def verify(spec: dict, path: list, where: Where) -> Verify | None:
    raw = spec.get("verify")
    if raw is None:
        return None
    path = path + ["verify"]
    checks = []
    for i, item in enumerate(raw.get("checks") or []):
        at = path + ["checks", i]
        if item.get("max") is None and item.get("min") is None:
            raise GitopsError(f"{where(at)}: check {item.get('name')!r} needs a threshold: max, min or both")
        window = item.get("window", "5m")
        checks.append(Check(name=item["name"], query=item["query"], window=window,
                            window_seconds=duration(window, at + ["window"], where),
                            max=item.get("max"), min=item.get("min")))
    names = [c.name for c in checks]
    if len(set(names)) != len(names):
        raise GitopsError(f"{where(path + ['checks'])}: check names must be unique (got {', '.join(names)})")
    _promtool_parse(checks, path, where)
    return Verify(tuple(checks), raw.get("on_fail", "abort"), raw.get("prometheus_url"))


def expand(query: str, values: dict[str, str]) -> str:
    for key in sorted(values, key=len, reverse=True):
        query = query.replace(key, values[key])
    return query


def _promtool_parse(checks: list[Check], path: list, where: Where) -> None:
    """Each expression, placeholders filled in, as a recording rule through `promtool check rules`.

    Without promtool on PATH the expressions are not checked here; Prometheus then rejects a bad one
    at query time and the verification fails (never passes)."""
    if not checks or not shutil.which("promtool"):
        return
    text = _promtool_errors(tuple(expand(c.query, PLACEHOLDERS | {"$window": c.window}) for c in checks))
    if text is None:
        return
    for i, check in enumerate(checks):  # promtool names the rule by its position ("rule 2")
        if re.search(rf"(?:rule|group \"verify\", rule) {i + 1}\b", text) or len(checks) == 1:
            raise GitopsError(f"{where(path + ['checks', i, 'query'])}: PromQL does not parse "
                              f"({_first_error(text)}): {check.query}")
    raise GitopsError(f"{where(path + ['checks'])}: PromQL does not parse: {_first_error(text)}")


@functools.lru_cache(maxsize=64)  # the receiver loads gitops.yaml for every job: one promtool run per content
def _promtool_errors(expressions: tuple[str, ...]) -> str | None:
    import yaml

    rules = [{"record": f"gitops_verify_{i}", "expr": expr} for i, expr in enumerate(expressions)]
    with tempfile.TemporaryDirectory(prefix="gitops-tool-promql-") as tmp:
        file = Path(tmp) / "verify.rules.yaml"
        file.write_text(yaml.safe_dump({"groups": [{"name": "verify", "rules": rules}]}), encoding="utf-8")
        res = subprocess.run([shutil.which("promtool") or "promtool", "check", "rules", str(file)],
                             capture_output=True, text=True, timeout=60)
    return None if res.returncode == 0 else (res.stderr + res.stdout).replace(str(file), "verify")


def _first_error(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip() and "FAILED" not in line
             and not line.strip().startswith("Checking")]
    first = lines[0] if lines else text.strip()
    return first.split("could not parse expression: ", 1)[-1]
