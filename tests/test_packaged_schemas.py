"""gitops-tool's own schemas for PrometheusRule and PodMonitor, used where the CRD folder has none."""

from __future__ import annotations

import copy

import yaml

from gitops_tool.validate import validate_environment
from tests.conftest import REPO_ROOT

RULE = yaml.safe_load((REPO_ROOT / "base/platform/prometheusrule.yaml").read_text())


def _check(doc: dict) -> list[str]:
    return [str(f) for f in validate_environment("dev", yaml.safe_dump(doc), schema_dir=None)]


def test_generated_rules_pass():
    assert _check(RULE) == []


def test_typo_and_missing_expr_are_errors():
    broken = copy.deepcopy(RULE)
    rule = broken["spec"]["groups"][0]["rules"][0]
    rule["exprr"] = rule.pop("expr")
    findings = _check(broken)
    assert findings and all(f.startswith("dev: PrometheusRule/gitops-tool: spec.groups[0].rules[0]") for f in findings)
    assert any("exprr" in f for f in findings) and any("'expr' is a required property" in f for f in findings)


def test_bad_duration_is_an_error():
    broken = copy.deepcopy(RULE)
    broken["spec"]["groups"][0]["rules"][0]["for"] = "ten minutes"
    assert any("spec.groups[0].rules[0].for" in f for f in _check(broken))


def test_pod_monitor_schema_rejects_unknown_fields():
    monitor = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": {"name": "m"},
               "spec": {"selector": {"matchLabels": {"a": "b"}},
                        "podMetricsEndpoints": [{"path": "/metrics", "intervall": "30s"}]}}
    findings = _check(monitor)
    assert len(findings) == 1 and "intervall" in findings[0]
    del monitor["spec"]["podMetricsEndpoints"][0]["intervall"]
    assert _check(monitor) == []
