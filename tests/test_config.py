"""gitops.yaml: schema errors name the file, line and path; bad input writes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_tool.config import load_config, load_config_text
from gitops_tool.errors import GitopsError
from gitops_tool.project import starter_config
from tests.conftest import run_cli


def _error(text: str) -> str:
    with pytest.raises(GitopsError) as info:
        load_config_text(text)
    return str(info.value)


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_starter_config_loads_with_defaults():
    cfg = load_config_text(starter_config())
    assert list(cfg.environments) == ["dev", "staging", "prod"]
    model = cfg.models["wine-classifier"]
    assert model.aliases == {"candidate": "dev", "challenger": "staging", "champion": "prod"}
    assert model.mode == "image"
    assert cfg.environments["prod"].autoscaling["max_replicas"] == 10
    assert cfg.mlflow["artifacts_bucket"] == "mlflow-artifacts"
    assert cfg.branch == "main"


def test_wrong_type_names_line_and_path():
    text = starter_config().replace("    replicas: 3\n", "    replicas: two\n")
    line = _line_of(text, "replicas: two")
    assert _error(text) == f"gitops.yaml:{line} environments.prod.replicas: 'two' is not of type 'integer'"


def test_unknown_key_is_named_with_its_line():
    text = starter_config().replace("  workers: 2\n", "  workers: 2\n  wrokers: 3\n")
    message = _error(text)
    assert message.startswith(f"gitops.yaml:{_line_of(text, 'wrokers')} mlflow.wrokers: unknown key 'wrokers'")


def test_malformed_yaml_names_the_line():
    text = starter_config().replace("  branch: main\n", "  branch: [main\n")
    assert "malformed YAML" in _error(text)
    assert _error(text).startswith("gitops.yaml:")


@pytest.mark.parametrize("old,new,path", [
    ("  prod:\n", "  Prod_Env:\n", "environments.Prod_Env"),
    ("  wine-classifier:\n", "  Wine_Classifier:\n", "models.Wine_Classifier"),
])
def test_names_must_be_dns_labels(old, new, path):
    message = _error(starter_config().replace(old, new))
    assert path in message and "DNS label" in message


def test_alias_to_unknown_environment():
    message = _error(starter_config().replace("champion: prod", "champion: production"))
    assert "alias 'champion' maps to unknown environment 'production'" in message
    assert "models.wine-classifier.aliases.champion" in message


def test_several_errors_are_all_reported_in_line_order():
    text = starter_config().replace("    replicas: 3\n", "    replicas: two\n").replace("workers: 2", "workers: many")
    lines = _error(text).splitlines()
    assert len(lines) == 2 and "mlflow.workers" in lines[0] and "environments.prod.replicas" in lines[1]


def test_missing_file(tmp_path: Path):
    with pytest.raises(GitopsError, match="not found"):
        load_config(tmp_path / "gitops.yaml")


def test_cli_missing_config_exits_1_and_names_it(tmp_path: Path):
    result = run_cli("generate", cwd=tmp_path)
    assert result.returncode == 1
    assert "gitops.yaml: not found" in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_cli_bad_config_writes_nothing(tmp_path: Path):
    (tmp_path / "gitops.yaml").write_text(starter_config().replace("    replicas: 3\n", "    replicas: two\n"))
    result = run_cli("generate", cwd=tmp_path)
    assert result.returncode == 1
    assert "environments.prod.replicas: 'two' is not of type 'integer'" in result.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["gitops.yaml"]


def test_cli_usage_error_keeps_exit_2(tmp_path: Path):
    assert run_cli("generate", "--no-such-flag", cwd=tmp_path).returncode == 2
