"""The validated-render cache: a re-promotion skips kustomize + validation only when nothing else changed.

Real parts: a project made by `init`, a real Git repository, the real kustomize (kubectl from the
wheel, behind a wrapper script that only counts its runs) and the real validation with the CRD
schemas. The disk-full case uses a real full tmpfs when this runs as root; elsewhere (no mount
rights) the cache write is made to raise OSError(ENOSPC), a named stand-in.
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from gitops_tool.errors import GitopsError
from gitops_tool.kustomize import render_cache
from gitops_tool.kustomize.render import kubectl_path
from gitops_tool.promotion.overlay_edit import validate_env
from gitops_tool.validate import K8S_VERSION
from tests.conftest import write_release

WINE = "wine-classifier"
IMAGE = "registry.example.com/ml/wine-classifier"


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@localhost", *args], cwd=root,
                   check=True, capture_output=True)


@pytest.fixture
def repo(project: Path, tmp_path: Path, monkeypatch) -> Path:
    real = kubectl_path()
    log = tmp_path / "kustomize-runs.log"
    wrapper = tmp_path / "kubectl"
    wrapper.write_text(f"#!/bin/sh\necho run >> {log}\nexec {real} \"$@\"\n")
    wrapper.chmod(0o755)
    monkeypatch.setenv("GITOPS_TOOL_KUBECTL", str(wrapper))
    monkeypatch.setenv("GITOPS_TOOL_CACHE_DIR", str(tmp_path / "cache"))
    kubectl_path.cache_clear()
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "platform")
    yield project
    kubectl_path.cache_clear()


def _runs(repo: Path) -> int:
    log = repo.parent / "kustomize-runs.log"
    return len(log.read_text().splitlines()) if log.exists() else 0


def _promote(repo: Path, version: str, schema_dir: Path) -> int:
    """Write the release as a promotion does, validate; the number of kustomize runs it took."""
    before = _runs(repo)
    write_release(repo, "dev", version, image=f"{IMAGE}:v{version}")
    validate_env("dev", repo / "environments" / "dev", schema_dir)
    return _runs(repo) - before


def _commit_all(repo: Path, message: str) -> None:
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", message)


def _warm(repo: Path, schema_dir: Path) -> None:
    assert _promote(repo, "1", schema_dir) == 1   # first time: a full render
    assert _promote(repo, "2", schema_dir) == 0   # only release lines changed: validated before
    _commit_all(repo, "dev at 2")
    assert _promote(repo, "3", schema_dir) == 0


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


LITERAL_SECRET = ("          - name: HOME\n            value: /tmp\n",
                  "          - name: HOME\n            value: /tmp\n          - name: DB_PASSWORD\n"
                  "            value: hunter2-literal\n")


@pytest.mark.parametrize("committed", [True, False], ids=["committed", "uncommitted"])
def test_a_changed_base_always_rerenders_and_an_invalid_one_is_caught(repo, schema_dir, committed):
    _warm(repo, schema_dir)
    _edit(repo / "base/serving/wine-classifier/inferenceservice.yaml", *LITERAL_SECRET)
    if committed:
        _commit_all(repo, "a literal secret in the base")
    with pytest.raises(GitopsError, match="does not validate after the edit") as info:
        _promote(repo, "4", schema_dir)
    assert "DB_PASSWORD" in str(info.value)
    assert _runs(repo) == 2  # the warm-up's one render, and this one


def test_a_changed_valid_base_rerenders_once_then_hits(repo, schema_dir):
    _warm(repo, schema_dir)
    _edit(repo / "base/serving/wine-classifier/inferenceservice.yaml", "memory: 256Mi", "memory: 300Mi")
    _commit_all(repo, "more memory")
    assert _promote(repo, "4", schema_dir) == 1
    assert _promote(repo, "5", schema_dir) == 0


def test_a_user_patch_always_rerenders_and_an_invalid_one_is_caught(repo, schema_dir):
    from gitops_tool.project import generate

    _warm(repo, schema_dir)
    (repo / "environments/dev/patches").mkdir()
    (repo / "environments/dev/patches/debug.yaml").write_text(
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata:\n  name: wine-classifier\n"
        "spec:\n  predictor:\n    containers:\n      - name: debug\n        image: busybox:latest\n")
    generate(repo / "gitops.yaml")  # lists the patch in environments/dev/kustomization.yaml
    _commit_all(repo, "a debug sidecar")
    with pytest.raises(GitopsError, match="latest"):
        _promote(repo, "4", schema_dir)


def test_a_hand_edited_generated_file_always_rerenders_and_is_caught(repo, schema_dir):
    _warm(repo, schema_dir)
    path = repo / "environments/dev/generated/serving/wine-classifier.yaml"
    _edit(path, "path: /spec/predictor/maxReplicas\n    value: 2", "path: /spec/predictor/maxReplicas\n    value: many")
    _commit_all(repo, "hand edit")
    with pytest.raises(GitopsError, match="maxReplicas"):
        _promote(repo, "4", schema_dir)


def test_release_values_a_promotion_never_writes_are_not_keyed(repo, schema_dir):
    """A hand-written :latest tag in the release is a release line, but not a value the cache masks."""
    _warm(repo, schema_dir)
    path = repo / "environments/dev/release/kustomization.yaml"
    _edit(path, "newTag: v3", "newTag: latest")
    assert render_cache.render_key("dev", repo / "environments/dev", schema_dir, "1.33") is None
    with pytest.raises(GitopsError, match="latest"):
        validate_env("dev", repo / "environments/dev", schema_dir)


def test_a_cache_from_another_tool_version_is_not_used(repo, schema_dir, monkeypatch):
    import gitops_tool

    _warm(repo, schema_dir)
    monkeypatch.setattr(gitops_tool, "__version__", "9.9.9")
    assert _promote(repo, "4", schema_dir) == 1


def test_other_schemas_are_another_key(repo, schema_dir, tmp_path):
    _warm(repo, schema_dir)
    copy = tmp_path / "schemas"
    shutil.copytree(schema_dir, copy)
    assert _promote(repo, "4", copy) == 1


def test_a_corrupted_entry_means_a_full_render_and_is_replaced(repo, schema_dir):
    _warm(repo, schema_dir)
    entries = list(render_cache.cache_dir().glob("*.json"))
    assert len(entries) == 1
    for garbage in ("{not json", '{"format": 1, "key": "other", "validated": true}', "", "\xff\x00"):
        entries[0].write_text(garbage, encoding="latin-1")
        assert _promote(repo, "4", schema_dir) == 1
        assert _promote(repo, "5", schema_dir) == 0  # the full path wrote a good entry again


def test_a_corrupted_entry_never_hides_an_invalid_change(repo, schema_dir):
    _warm(repo, schema_dir)
    entry = next(render_cache.cache_dir().glob("*.json"))
    _edit(repo / "base/serving/wine-classifier/inferenceservice.yaml", *LITERAL_SECRET)
    _commit_all(repo, "a literal secret in the base")
    key = render_cache.render_key("dev", repo / "environments/dev", schema_dir, "1.33")
    entry.rename(entry.with_name(f"{key}.json"))  # an entry under the new key, but for another
    with pytest.raises(GitopsError, match="DB_PASSWORD"):
        _promote(repo, "4", schema_dir)


def _full_tmpfs(path: Path) -> bool:
    """A 64 KiB tmpfs at ``path``, filled up; False when mounting is not allowed here."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(path)],
                      capture_output=True).returncode != 0:
        return False
    (path / "gitops-tool" / render_cache.SUBDIR).mkdir(parents=True)
    try:
        with open(path / "filler", "wb") as handle:
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    return True


def test_a_full_disk_during_the_cache_write_ends_in_a_correct_full_path(repo, schema_dir, tmp_path, monkeypatch):
    mount = tmp_path / "full"
    real = _full_tmpfs(mount)
    try:
        if real:
            monkeypatch.setenv("GITOPS_TOOL_CACHE_DIR", str(mount / "gitops-tool"))
        else:  # stand-in: no mount rights here, so the write itself reports a full disk
            def full(*_a, **_k):
                raise OSError(errno.ENOSPC, "No space left on device")
            monkeypatch.setattr(render_cache, "_write", full)
        assert _promote(repo, "1", schema_dir) == 1
        assert _promote(repo, "2", schema_dir) == 1  # nothing was cached: full path again, and it passes
        assert not list(render_cache.cache_dir().glob("*.json"))
        assert not list(render_cache.cache_dir().glob(".*.tmp"))  # no half-written entry left behind
        _edit(repo / "base/serving/wine-classifier/inferenceservice.yaml", *LITERAL_SECRET)
        _commit_all(repo, "a literal secret in the base")
        with pytest.raises(GitopsError, match="DB_PASSWORD"):
            _promote(repo, "3", schema_dir)
    finally:
        if real:
            subprocess.run(["umount", str(mount)], capture_output=True)


def test_the_cache_can_be_turned_off(repo, schema_dir, monkeypatch):
    _warm(repo, schema_dir)
    monkeypatch.setenv("GITOPS_TOOL_CACHE", "off")
    assert _promote(repo, "4", schema_dir) == 1


def test_the_deployed_at_stamp_a_promotion_writes_is_not_keyed(repo, schema_dir):
    """Each new version stamps gitops-tool.io/deployed-at (soak measures from it): a later second must still hit."""
    import time

    assert _promote(repo, "1", schema_dir) == 1
    time.sleep(1.1)  # the stamp has one-second resolution: make sure it differs
    assert _promote(repo, "2", schema_dir) == 0
    texts = "".join(p.read_text() for p in (repo / "environments" / "dev" / "release").iterdir())
    assert "gitops-tool.io/deployed-at" in texts


def test_a_deployed_at_stamp_a_promotion_never_writes_is_keyed(repo, schema_dir):
    assert _promote(repo, "1", schema_dir) == 1
    release_dir = repo / "environments" / "dev" / "release"
    for path in release_dir.iterdir():
        text = path.read_text()
        if "gitops-tool.io/deployed-at:" in text:
            head, _, tail = text.partition("gitops-tool.io/deployed-at:")
            value, nl, rest = tail.partition("\n")
            path.write_text(f"{head}gitops-tool.io/deployed-at: yesterday-ish{nl}{rest}")
    validate_env("dev", repo / "environments" / "dev", schema_dir)
    assert _runs(repo) == 2  # not a time a promotion writes: rendered in full


def _promote_after(repo: Path, version: str, before: tuple, schema_dir: Path) -> int:
    """The edit a real promotion writes, rollback chain (deployed-before) included; kustomize runs it took."""
    from gitops_tool.kustomize.release import parse_image
    from gitops_tool.kustomize.release_edit import ReleaseEdit, plan_release_edit

    runs = _runs(repo)
    edit = ReleaseEdit(WINE, version, image=parse_image(f"{IMAGE}:v{version}"), before=before)
    for path, text in plan_release_edit(repo / "environments" / "dev", edit).items():
        path.write_text(text)
    validate_env("dev", repo / "environments" / "dev", schema_dir)
    _commit_all(repo, f"dev at {version}")
    return _runs(repo) - runs


def test_the_first_re_promotion_which_adds_the_rollback_chain_hits(repo, schema_dir):
    """A model's first promotion has no deployed-before annotation, its second adds one: that line's
    presence is no new input of the render (one more annotation beside the version's), so the second
    promotion is served; found by the receiver's burst bench, where every job of the burst missed."""
    from gitops_tool.kustomize.release import Deployed

    assert _promote_after(repo, "1", (), schema_dir) == 1
    assert _promote_after(repo, "2", (Deployed("1", f"{IMAGE}:v1"),), schema_dir) == 0
    assert _promote_after(repo, "3", (Deployed("2", f"{IMAGE}:v2"), Deployed("1", f"{IMAGE}:v1")), schema_dir) == 0


def test_a_chain_line_that_is_not_one_annotation_among_others_is_keyed(repo, schema_dir):
    """deployed-before as a label instead of an annotation is a new input of the render: rendered and validated again."""
    from gitops_tool.kustomize.release import Deployed

    assert _promote_after(repo, "1", (), schema_dir) == 1
    path = repo / "environments/dev/release/wine-classifier.yaml"
    chain = '[{"version":"1","image":"registry.example.com/ml/wine-classifier:v1"}]'
    _edit(path, "  annotations:\n", f"  labels:\n    gitops-tool.io/deployed-before: '{chain}'\n  annotations:\n")
    validate_env("dev", repo / "environments" / "dev", schema_dir)
    assert _runs(repo) == 2


def test_a_chain_line_in_a_file_of_another_shape_is_keyed_not_a_crash(repo, schema_dir):
    """metadata that is not a mapping: the chain line stays in the key (no key error, no crash)."""
    release = repo / "environments/dev/release"
    before = render_cache.render_key("dev", repo / "environments/dev", schema_dir, K8S_VERSION)
    (release / "odd.yaml").write_text("metadata: plain\ngitops-tool.io/deployed-before: '[{\"version\":\"1\"}]'\n")
    after = render_cache.render_key("dev", repo / "environments/dev", schema_dir, K8S_VERSION)
    assert before is not None and after is not None and after != before
