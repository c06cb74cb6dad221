"""Step gates: checks a version must pass before its commit. A failure names the gate and the numbers."""

from __future__ import annotations

import math
import operator
import re
from typing import TYPE_CHECKING, Callable

from gitops_tool.errors import GitopsError

if TYPE_CHECKING:  # the client is only passed in: gitops.yaml checks import this module without HTTP
    from gitops_tool.registry import RegistryClient

_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt, "==": operator.eq,
}
_NUMBER = r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?"
_RULE = re.compile(rf"^\s*(?P<metric>[A-Za-z0-9_.\-/ ]+?)\s*(?P<op>>=|<=|==|>|<)\s*(?P<value>{_NUMBER})\s*$")
MISSING_BASELINE = ("fail", "pass")


def parse_rule(rule: str) -> tuple[str, str, float]:
    match = _RULE.match(rule) if isinstance(rule, str) else None
    if not match:
        raise GitopsError(f"gate {rule!r}: expected 'metric OP number', e.g. 'accuracy >= 0.9'")
    return match["metric"], match["op"], float(match["value"])


def metric_thresholds(rules: list[str], metrics: dict[str, float], label: str) -> None:
    for rule in rules:
        metric, op, bound = parse_rule(rule)
        if metric not in metrics:
            raise GitopsError(f"gate metrics: {label} has no metric {metric!r} (has: {', '.join(metrics) or 'none'})")
        if math.isnan(metrics[metric]) or not _OPS[op](metrics[metric], bound):
            raise GitopsError(f"gate metrics: {label}: {metric} = {metrics[metric]:g}, needs {op} {bound:g}")


def no_worse_than(names: list[str], new: dict[str, float], old: dict[str, float], label: str, old_label: str,
                  on_missing: str = "fail") -> list[str]:
    """Fails on a drop, on NaN in the candidate; a missing or NaN baseline follows ``on_missing``."""
    unchecked = []
    for metric in names:
        if metric not in new:
            raise GitopsError(f"gate no_worse_than_deployed: {label} has no metric {metric!r}")
        if math.isnan(new[metric]):
            raise GitopsError(f"gate no_worse_than_deployed: {label}: {metric} is NaN; NaN never passes a comparison")
        baseline = old.get(metric)
        if baseline is None or math.isnan(baseline):
            what = "has no" if baseline is None else "has NaN for"
            missing_baseline(on_missing, f"{old_label} {what} metric {metric!r}")
            unchecked.append(metric)
        elif new[metric] < baseline:
            raise GitopsError(
                f"gate no_worse_than_deployed: {label}: {metric} = {new[metric]:g} is worse than "
                f"{old_label} ({baseline:g})"
            )
    return unchecked


def missing_baseline(policy: str, why: str) -> None:
    if policy != "pass":
        raise GitopsError(f"gate no_worse_than_deployed: no baseline to compare with: {why}; nothing committed",
                          hint="set gates.on_missing_baseline: pass in gitops.yaml to promote without one")


def _baseline(client: RegistryClient, model_name: str, version: str, policy: str) -> dict[str, float] | None:
    """The deployed version's metrics, or None (policy pass) when the version or its run is gone."""
    try:
        old = client.get_version(model_name, version)
        if not old.run_id:
            raise GitopsError(f"version {version} has no run")
        return client.get_run_metrics(old.run_id)
    except GitopsError as exc:
        if exc.retryable or "not found" not in str(exc):
            raise
        missing_baseline(policy, f"deployed version {version}: {str(exc).splitlines()[0]}")
        return None


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
        policy = gates.get("on_missing_baseline", "fail")
        old_metrics = _baseline(client, model_name, deployed_version, policy)
        if old_metrics is None:
            passed.append(f"no baseline (version {deployed_version} gone; on_missing_baseline: pass)")
        else:
            unchecked = no_worse_than(gates["no_worse_than_deployed"], metrics, old_metrics, label,
                                      f"version {deployed_version}", policy)
            note = f" (no baseline for {', '.join(unchecked)})" if unchecked else ""
            passed.append(f"no worse than version {deployed_version}{note}")
    before = (gates.get("require_previous_stage") or {}).get(env)
    if before:
        if version not in versions_run_in(before):
            raise GitopsError(f"gate require_previous_stage: {label} has not run in {before} (needed before {env})")
        passed.append(f"ran in {before} first")
    return passed
