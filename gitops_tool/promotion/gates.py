"""Step gates: checks a version must pass before its commit. A failure names the gate and the numbers."""

from __future__ import annotations

import operator
import re
from typing import Callable

from gitops_tool.errors import GitopsError
from gitops_tool.registry import RegistryClient

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq,
}
_RULE = re.compile(r"^\s*(?P<metric>[A-Za-z0-9_.\-/ ]+?)\s*(?P<op>>=|<=|==|>|<)\s*(?P<value>-?[0-9.eE+-]+)\s*$")


def parse_rule(rule: str) -> tuple[str, str, float]:
    match = _RULE.match(rule)
    if not match:
        raise GitopsError(f"gate {rule!r}: expected 'metric OP number', e.g. 'accuracy >= 0.9'")
    return match["metric"], match["op"], float(match["value"])


def metric_thresholds(rules: list[str], metrics: dict[str, float], label: str) -> None:
    for rule in rules:
        metric, op, bound = parse_rule(rule)
        if metric not in metrics:
            raise GitopsError(f"gate metrics: {label} has no metric {metric!r} (has: {', '.join(metrics) or 'none'})")
        if not _OPS[op](metrics[metric], bound):
            raise GitopsError(f"gate metrics: {label}: {metric} = {metrics[metric]:g}, needs {op} {bound:g}")


def no_worse_than(names: list[str], new: dict[str, float], old: dict[str, float], label: str, old_label: str) -> None:
    for metric in names:
        if metric not in new:
            raise GitopsError(f"gate no_worse_than_deployed: {label} has no metric {metric!r}")
        if metric in old and new[metric] < old[metric]:
            raise GitopsError(
                f"gate no_worse_than_deployed: {label}: {metric} = {new[metric]:g} is worse than "
                f"{old_label} ({old[metric]:g})"
            )


def run_gates(*, gates: dict, client: RegistryClient, model_name: str, env: str, version: str,
              run_id: str | None, deployed_version: str | None, versions_run_in: Callable[[str], set[str]]) -> list[str]:
    """Run the configured gates; returns a line per gate that passed."""
    passed: list[str] = []
    label = f"{model_name} version {version}"
    need_metrics = gates.get("metrics") or gates.get("no_worse_than_deployed")
    metrics = client.get_run_metrics(run_id) if need_metrics and run_id else {}
    if need_metrics and not run_id:
        raise GitopsError(f"gate metrics: {label} has no run to read metrics from")
    if gates.get("metrics"):
        metric_thresholds(gates["metrics"], metrics, label)
        passed.append(f"metrics: {', '.join(gates['metrics'])}")
    if gates.get("no_worse_than_deployed") and deployed_version and deployed_version != version:
        old = client.get_version(model_name, deployed_version)
        old_metrics = client.get_run_metrics(old.run_id) if old.run_id else {}
        no_worse_than(gates["no_worse_than_deployed"], metrics, old_metrics, label, f"version {deployed_version}")
        passed.append(f"no worse than version {deployed_version}")
    before = (gates.get("require_previous_stage") or {}).get(env)
    if before:
        if version not in versions_run_in(before):
            raise GitopsError(f"gate require_previous_stage: {label} has not run in {before} (needed before {env})")
        passed.append(f"ran in {before} first")
    return passed
