"""The CRD JSON Schemas packaged with gitops-tool (gitops_tool/validate/schemas/): validate works after
`init` with no flags; a --schema-dir (`schemas pull` output) overrides them. Derived from the upstream
CRDs via ../shared/schemas by tools/package_crd_schemas.py; those tests skip where it is absent."""

from __future__ import annotations

import copy
import importlib.util
import json

import pytest
import yaml

from gitops_tool.validate import validate_environment
from gitops_tool.validate.crds import PACKAGED
from tests.conftest import REPO_ROOT, SHARED_SCHEMAS

RULE = yaml.safe_load((REPO_ROOT / "base/platform/prometheusrule.yaml").read_text())
SOURCES = json.loads((PACKAGED / "SOURCES.json").read_text())
needs_shared = pytest.mark.skipif(not (SHARED_SCHEMAS / "argoproj.io").is_dir(),
                                  reason=f"upstream-derived CRD schemas not found at {SHARED_SCHEMAS}")


def _check(doc: dict, schema_dir=None) -> list[str]:
    return [str(f) for f in validate_environment("dev", yaml.safe_dump(doc), schema_dir=schema_dir)]


def test_every_packaged_schema_records_its_upstream_version_and_licence():
    files = {p.relative_to(PACKAGED).as_posix() for p in PACKAGED.glob("*/*.json")}
    assert files == set(SOURCES)
    groups = {rel.split("/")[0] for rel in files}
    assert {"argoproj.io", "serving.kserve.io", "monitoring.coreos.com", "external-secrets.io", "bitnami.com",
            "gateway.networking.k8s.io", "gateway.envoyproxy.io"} <= groups
    for rel, src in SOURCES.items():
        assert src["upstream"].startswith("https://github.com/") and src["version"].startswith("v"), rel
        assert len(src["commit"]) == 40 and src["licence"] == "Apache-2.0", rel
        assert rel == f"{src['apiVersion'].split('/')[0]}/{src['kind'].lower()}_{src['apiVersion'].split('/')[1]}.json"
    assert "Apache License" in (PACKAGED / "LICENSE-Apache-2.0.txt").read_text()


@needs_shared
def test_the_packaged_schemas_are_the_upstream_ones_without_descriptions(tmp_path):
    spec = importlib.util.spec_from_file_location("package_crd_schemas", REPO_ROOT / "tools/package_crd_schemas.py")
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    tool.package(SHARED_SCHEMAS, tmp_path)
    for rel in [*SOURCES, "SOURCES.json"]:
        assert (tmp_path / rel).read_bytes() == (PACKAGED / rel).read_bytes(), f"{rel}: run tools/package_crd_schemas.py"


@needs_shared
def test_the_reference_platform_gets_the_same_findings_packaged_or_from_shared():
    from gitops_tool.validate import validate_all

    dirs = {env: REPO_ROOT / "environments" / env for env in ("dev", "staging", "prod")} | {
        "argocd": REPO_ROOT / "argocd"}
    packaged = validate_all(dirs, schema_dir=None)
    shared = validate_all(dirs, schema_dir=SHARED_SCHEMAS)
    assert [f.message for f in packaged] == [f.message for f in shared] == []


def test_a_schema_dir_overrides_the_packaged_schema(tmp_path):
    """`schemas pull` writes the cluster's schemas; those win over the packaged ones."""
    folder = tmp_path / "monitoring.coreos.com"
    folder.mkdir()
    packaged = json.loads((PACKAGED / "monitoring.coreos.com/prometheusrule_v1.json").read_text())
    packaged["properties"]["spec"]["required"] = ["groups", "mustHave"]
    (folder / "prometheusrule_v1.json").write_text(json.dumps(packaged))
    assert _check(RULE) == []
    (finding,) = _check(RULE, tmp_path)
    assert "'mustHave' is a required property" in finding


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
