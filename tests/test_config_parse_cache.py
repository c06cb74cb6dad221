"""A gitops.yaml that loaded cleanly is not parsed again: the same Config, the same line numbers.

Real parts: the starter and the reference gitops.yaml, the real loader, ruamel and JSON Schema."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gitops_tool.config import load_config, parse_cache
from gitops_tool.config.loader import _line_of, _parse_yaml, schema_text
from gitops_tool.errors import GitopsError
from gitops_tool.project import starter_config
from tests.conftest import REPO_ROOT


def _fresh(path: Path, monkeypatch):
    monkeypatch.setenv("GITOPS_TOOL_CACHE", "off")
    cfg = load_config(path)
    monkeypatch.delenv("GITOPS_TOOL_CACHE")
    return cfg


@pytest.mark.parametrize("text", [starter_config(), (REPO_ROOT / "gitops.yaml").read_text()], ids=["starter", "reference"])
def test_a_cached_load_is_the_same_config(tmp_path: Path, monkeypatch, text):
    path = tmp_path / "gitops.yaml"
    path.write_text(text)
    load_config(path)  # parses and stores
    assert parse_cache.lookup(text, schema_text()) is not None
    assert load_config(path) == _fresh(path, monkeypatch)


def test_cached_line_numbers_are_the_parsers(tmp_path: Path):
    text = starter_config()
    doc = _parse_yaml(text, "x")
    lines = parse_cache.all_lines(doc)
    paths = [list(p) for p in lines] + [["models", "no-such-model", "aliases"], ["environments", "dev", "x", "y"],
                                        ["platform", "instances"], [], ["nope"]]
    assert all(parse_cache.line_from(lines, p) == _line_of(doc, p) for p in paths)


def test_a_broken_config_is_never_cached_and_always_refused(tmp_path: Path):
    path = tmp_path / "gitops.yaml"
    path.write_text(starter_config() + "unknown_key: 1\n")
    for _ in range(2):
        with pytest.raises(GitopsError, match="unknown_key"):
            load_config(path)
    assert parse_cache.lookup(path.read_text(), schema_text()) is None


def test_an_entry_others_may_write_or_a_corrupt_one_is_not_read(tmp_path: Path, monkeypatch):
    path = tmp_path / "gitops.yaml"
    path.write_text(starter_config().replace("project: mlflow-platform", "project: parse-probe", 1))
    load_config(path)
    entry = parse_cache._entry(path.read_text(), schema_text())
    os.chmod(entry, 0o666)
    assert parse_cache.lookup(path.read_text(), schema_text()) is None
    os.chmod(entry, 0o600)
    entry.write_bytes(b"not a pickle")
    assert parse_cache.lookup(path.read_text(), schema_text()) is None
    assert load_config(path) == _fresh(path, monkeypatch)  # parsed again, and stored again
    assert parse_cache.lookup(path.read_text(), schema_text()) is not None
