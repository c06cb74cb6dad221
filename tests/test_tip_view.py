"""The read-only view `status` uses: gitops.yaml and the release files at the remote's tip.

Real parts: a project made by `init`, a real bare remote and a second clone that pushes to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gitops_tool.errors import GitopsError
from gitops_tool.kustomize.release import read_release
from gitops_tool.promotion.status import collect
from gitops_tool.promotion.tip_view import open_tip_view
from tests.conftest import write_release
from tests.promotion_fixtures import make_repo

WINE = "wine-classifier"


def test_the_view_is_the_remote_tip_not_the_working_tree(tmp_path: Path):
    repo = make_repo(tmp_path, None)
    other = repo.clone(tmp_path / "other")
    write_release(other.root, "dev", "7", image="registry.example.com/ml/wine-classifier:v7")
    (other.root / "gitops.yaml").write_text((other.root / "gitops.yaml").read_text().replace(
        "  wine-classifier:\n", "  wine-classifier:\n    # pushed from elsewhere\n", 1))
    other.commit_and_push("dev at 7, from another clone")
    write_release(repo.root, "staging", "3", image="registry.example.com/ml/wine-classifier:v3")  # local only
    before = repo.snapshot()
    with open_tip_view(repo.root / "gitops.yaml") as view:
        assert read_release(view.cfg.env_dir("dev"))[WINE].version == "7"
        assert WINE not in read_release(view.cfg.env_dir("staging"))
        assert "# pushed from elsewhere" in Path(view.cfg.source).read_text()
        assert view.commit == repo.remote_head()
        rows, _ = collect(view.cfg, None)
        assert {(r.env, r.git_version) for r in rows} == {("dev", "7"), ("staging", None), ("prod", None)}
        only = {p.relative_to(view.cfg.root).as_posix() for p in view.cfg.root.rglob("*") if p.is_file()}
        assert only == {"gitops.yaml"} | {f"environments/{e}/release/kustomization.yaml"
                                          for e in ("dev", "staging", "prod")} | {
                        f"environments/dev/release/{WINE}.yaml"}
        root = view.cfg.root
    assert not root.exists()
    assert repo.snapshot() == before  # the checkout's HEAD, the remote and the working tree as they were


def test_a_broken_release_at_the_tip_names_the_users_path(tmp_path: Path):
    repo = make_repo(tmp_path, None)
    path = repo.release("dev")
    path.write_text(path.read_text().replace("images: []", "images: [unclosed"))
    repo.commit_and_push("break the dev release")
    with pytest.raises(GitopsError) as info, open_tip_view(repo.root / "gitops.yaml") as view:
        collect(view.cfg, None)
    assert f"{path}: corrupted YAML" in str(info.value) and "the remote's tip" in str(info.value)
