"""A no-op `generate` reuses the files on disk instead of re-dumping; the output stays byte-identical.

Real parts: projects made by `init`, the real generate writing to disk, the real CLI for --check."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from gitops_tool.platform import dump_memo
from gitops_tool.project import generate
from tests.conftest import REPO_ROOT, run_cli


def _tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _memo_hits(monkeypatch) -> list[int]:
    hits: list[int] = []
    real = dump_memo.DumpMemo.save

    def save(self):
        hits.append(self.hits)
        return real(self)

    monkeypatch.setattr(dump_memo.DumpMemo, "save", save)
    return hits


def test_a_no_op_generate_reuses_every_file_and_changes_nothing(project: Path, monkeypatch):
    hits = _memo_hits(monkeypatch)
    before = _tree(project)
    for _ in range(2):  # `init` dumped everything with an empty memo; now the files on disk serve
        result = generate(project / "gitops.yaml")
        assert not [a for a in result.actions if a.changes] and _tree(project) == before
    assert hits[0] > 20 and hits[1] == hits[0]


def _same_as_without_memo(project: Path, tmp_path: Path, monkeypatch) -> None:
    """The tree equals what a generate without any memo writes from the same gitops.yaml."""
    fresh = tmp_path / "fresh"
    shutil.copytree(project, fresh)
    monkeypatch.setenv("GITOPS_TOOL_CACHE", "off")
    generate(fresh / "gitops.yaml")
    monkeypatch.delenv("GITOPS_TOOL_CACHE")
    assert _tree(project) == _tree(fresh)


def test_a_changed_config_redumps_what_changed(project: Path, tmp_path: Path, monkeypatch):
    generate(project / "gitops.yaml")
    config = project / "gitops.yaml"
    text = config.read_text()
    assert "max_replicas: 3" in text
    config.write_text(text.replace("max_replicas: 3", "max_replicas: 5", 1))
    result = generate(config)
    assert [a for a in result.actions if a.changes]
    _same_as_without_memo(project, tmp_path, monkeypatch)


def test_a_hand_edited_generated_file_is_rewritten(project: Path, tmp_path: Path, monkeypatch):
    generate(project / "gitops.yaml")
    path = project / "base/serving/wine-classifier/inferenceservice.yaml"
    good = path.read_bytes()
    path.write_text(path.read_text().replace("memory: 256Mi", "memory: 999Mi"))
    result = generate(project / "gitops.yaml")
    assert [a.path for a in result.actions if a.changes] == ["base/serving/wine-classifier/inferenceservice.yaml"]
    assert path.read_bytes() == good


@pytest.mark.parametrize("garbage", ["{not json", '{"fingerprint": "x", "entries": {}}', ""])
def test_a_corrupt_memo_means_dumping_as_before(project: Path, tmp_path: Path, monkeypatch, garbage):
    generate(project / "gitops.yaml")
    memo = dump_memo.DumpMemo(project)
    assert memo.file.is_file()
    memo.file.write_text(garbage)
    path = project / "base/serving/wine-classifier/inferenceservice.yaml"
    path.write_text(path.read_text().replace("memory: 256Mi", "memory: 999Mi"))
    generate(project / "gitops.yaml")
    _same_as_without_memo(project, tmp_path, monkeypatch)


def test_a_memo_entry_whose_file_hash_lies_is_not_trusted(project: Path, tmp_path: Path, monkeypatch):
    """Even an entry claiming the edited file is the dump is checked against the documents' hash."""
    generate(project / "gitops.yaml")
    memo = dump_memo.DumpMemo(project)
    rel = "base/serving/wine-classifier/inferenceservice.yaml"
    path = project / rel
    path.write_text(path.read_text().replace("memory: 256Mi", "memory: 999Mi"))
    memo.fresh = dict(memo.entries)
    memo.fresh[rel] = ["0" * 64, dump_memo._sha(path.read_bytes())]  # right file hash, other documents
    memo.save()
    generate(project / "gitops.yaml")
    _same_as_without_memo(project, tmp_path, monkeypatch)


def test_generate_check_passes_on_the_reference_platform():
    for _ in range(2):  # once filling the memo, once using it
        res = run_cli("generate", "--check", cwd=REPO_ROOT)
        assert res.returncode == 0, res.stdout + res.stderr
