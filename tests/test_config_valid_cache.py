"""A gitops.yaml that passed the schema once is not checked (nor jsonschema imported) again; any change is.

Real parts: the starter gitops.yaml, the real loader and JSON Schema, fresh interpreters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gitops_tool.config import load_config
from gitops_tool.errors import GitopsError
from gitops_tool.project import starter_config

PROBE = "import sys; from pathlib import Path; from gitops_tool.config import load_config; " \
        "load_config(Path(sys.argv[1])); print('jsonschema' in sys.modules)"


def _imports_jsonschema(path: Path) -> bool:
    res = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True, text=True, check=True)
    return res.stdout.strip() == "True"


def test_a_checked_config_skips_jsonschema_next_time(tmp_path: Path):
    path = tmp_path / "gitops.yaml"
    path.write_text(starter_config().replace("project: mlflow-platform", "project: cache-probe", 1))
    assert _imports_jsonschema(path)           # first time: checked
    assert not _imports_jsonschema(path)       # the same content: known to pass
    path.write_text(path.read_text() + "\n# a comment changes nothing the schema sees\n")
    assert not _imports_jsonschema(path)
    path.write_text(path.read_text().replace("project: cache-probe", "project: cache-probe-2"))
    assert _imports_jsonschema(path)           # other content: checked again


def test_an_invalid_config_is_refused_every_time(tmp_path: Path):
    path = tmp_path / "gitops.yaml"
    path.write_text(starter_config() + "unknown_key: 1\n")
    for _ in range(2):
        with pytest.raises(GitopsError, match="unknown key 'unknown_key'"):
            load_config(path)


def test_a_config_that_passed_and_then_breaks_is_refused(tmp_path: Path):
    path = tmp_path / "gitops.yaml"
    path.write_text(starter_config())
    load_config(path)
    path.write_text(starter_config().replace("project: mlflow-platform", "project: Not_A_Dns_Label", 1))
    with pytest.raises(GitopsError, match="project"):
        load_config(path)
