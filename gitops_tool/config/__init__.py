"""`gitops.yaml`: loading, schema checking and the typed configuration."""

from gitops_tool.config.loader import CONFIG_FILE, find_config, load_config, load_config_text
from gitops_tool.config.model import Config, Environment, Model

__all__ = ["CONFIG_FILE", "Config", "Environment", "Model", "find_config", "load_config", "load_config_text"]
