"""`validate ENV` scans for secrets only what that overlay reads; `validate` scans the whole tree.

Real parts: a project made by `init`, committed to a real Git repository, the real CLI in a
subprocess with the real kustomize and the CRD schemas."""

from __future__ import annotations

import subprocess
from pathlib import Path

from gitops_tool.validate import scan_tree
from tests.conftest import run_cli

FAKE_GHP = "ghp_" + "A1b2C3d4" * 5  # token-shaped, not a token


def _commit(root: Path) -> None:
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@localhost", "commit", "-q", "-m", "p"],
                   cwd=root, check=True)


def test_scan_tree_limited_to_paths(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    for rel in ("a/leak.yaml", "b/leak.yaml", "top.yaml"):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(f"token: {FAKE_GHP}\n")
    _commit(repo)
    assert [h.source for h in scan_tree(repo, ["a", "top.yaml"])] == ["a/leak.yaml", "top.yaml"]
    assert [h.source for h in scan_tree(repo)] == ["a/leak.yaml", "b/leak.yaml", "top.yaml"]
    plain = tmp_path / "plain"  # no Git: the walk keeps to the paths too
    (plain / "a").mkdir(parents=True)
    (plain / "a" / "k.yaml").write_text(f"token: {FAKE_GHP}\n")
    (plain / "b.yaml").write_text(f"token: {FAKE_GHP}\n")
    assert [h.source for h in scan_tree(plain, ["a"])] == ["a/k.yaml"]


def test_validate_env_scans_what_the_overlay_reads_and_no_other_environment(project: Path, schema_dir: Path):
    (project / "environments/prod/notes.txt").write_text(f"token: {FAKE_GHP}\n")
    (project / "base/serving/notes.txt").write_text(f"token: {FAKE_GHP}\n")
    _commit(project)
    dev = run_cli("validate", "dev", "--schema-dir", str(schema_dir), cwd=project)
    assert dev.returncode == 1, dev.stdout + dev.stderr
    assert "base/serving/notes.txt" in dev.stdout and "environments/prod/notes.txt" not in dev.stdout
    (project / "base/serving/notes.txt").unlink()
    (project / "environments/dev/notes.txt").write_text(f"token: {FAKE_GHP}\n")
    subprocess.run(["git", "add", "-A"], cwd=project, check=True)
    dev = run_cli("validate", "dev", "--schema-dir", str(schema_dir), cwd=project)
    assert dev.returncode == 1 and "environments/dev/notes.txt" in dev.stdout, dev.stdout + dev.stderr
    staging = run_cli("validate", "staging", "--schema-dir", str(schema_dir), cwd=project)
    assert staging.returncode == 0, staging.stdout + staging.stderr
    everything = run_cli("validate", "--schema-dir", str(schema_dir), cwd=project)
    assert everything.returncode == 1
    assert "environments/prod/notes.txt" in everything.stdout and "environments/dev/notes.txt" in everything.stdout
