"""`gitops.yaml`: loading, schema checking and the typed configuration."""

from gitops_tool.config.loader import CONFIG_FILE, find_config, load_config, load_config_text
from gitops_tool.config.model import Config, Environment, Model, PlatformInstance

__all__ = ["CONFIG_FILE", "Config", "Environment", "Model", "PlatformInstance", "find_config", "load_config", "load_config_text"]
