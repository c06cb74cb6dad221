"""A project made by the real `init`, with a storage-mode model promoted to dev (local Secrets there)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import write_release

STORAGE_MODEL = """
  wine-storage:
    mode: storage
    aliases: {candidate: dev}
"""


def edit_config(root: Path, old: str, new: str) -> None:
    config = root / "gitops.yaml"
    text = config.read_text()
    assert old in text, old
    config.write_text(text.replace(old, new))


def generate(root: Path) -> None:
    from gitops_tool.project import generate as generate_tree

    generate_tree(root / "gitops.yaml")


def storage_project(root: Path) -> Path:
    """The starter plus `wine-storage` (storage mode, candidate -> dev, version 3 promoted), dev Secrets local."""
    from gitops_tool.project import init_project

    init_project(root)
    edit_config(root, "\nmodels:\n", "\nmodels:" + STORAGE_MODEL)
    edit_config(root, "secrets: {method: external, store: platform-secrets, remote_prefix: models/dev}",
                "secrets: {method: local}")
    generate(root)
    write_release(root, "dev", "3", storage_uri="s3://mlflow-artifacts/1/models/m-abc/artifacts",
                  model="wine-storage")
    return root
