"""Entry points shared by the library and the CLI: init and generate."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from gitops_tool.config import CONFIG_FILE, Config, load_config
from gitops_tool.errors import GitopsError
from gitops_tool.platform.tree import MANAGED_DIRS, create_once_tree, generated_tree
from gitops_tool.platform.writer import FileAction, apply_actions, guard_drops, plan_actions


@dataclass(frozen=True)
class GenerateResult:
    root: Path
    actions: list[FileAction]

    @property
    def changed(self) -> list[FileAction]:
        return [a for a in self.actions if a.changes]


def generate(config_path: Path, *, write: bool = True, prune: bool = False) -> GenerateResult:
    """(Re)write base/, environments/<env>/ and argocd/ from gitops.yaml. `write=False` only plans."""
    cfg = load_config(config_path)
    return generate_from(cfg, write=write, prune=prune)


def generate_from(cfg: Config, *, write: bool = True, prune: bool = False) -> GenerateResult:
    actions = plan_actions(cfg.root, generated_tree(cfg), create_once_tree(cfg), MANAGED_DIRS)
    actions += guard_drops(cfg.root, actions, prune)
    if write:
        apply_actions(cfg.root, actions)
    return GenerateResult(cfg.root, actions)


def starter_config() -> str:
    return resources.files("gitops_tool.templates").joinpath("gitops.yaml").read_text()


def init_project(directory: Path, *, repo_url: str | None = None) -> GenerateResult:
    """Write the starter gitops.yaml for the wine-classifier example and generate the tree."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / CONFIG_FILE
    if target.exists():
        raise GitopsError(f"{target}: already exists; init never overwrites it", hint="run `gitops-tool generate`")
    text = starter_config()
    if repo_url:
        text = text.replace("https://github.com/example-org/mlflow-gitops.git", repo_url, 1)
    target.write_text(text, encoding="utf-8")
    try:
        return generate(target)
    except BaseException:
        target.unlink(missing_ok=True)  # leave the directory as it was
        raise
