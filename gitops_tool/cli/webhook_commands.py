"""webhook serve / webhook register, and demo: plain functions returning an exit code."""

from __future__ import annotations

from pathlib import Path

from gitops_tool.cli.output import out, out_json
from gitops_tool.errors import GitopsError


def serve(*, host: str, port: int, mode: str, repo_url: str | None, branch: str | None, secret_file: str | None,
          config: str | None, tracking_uri: str | None, github_repository: str | None, github_api_url: str,
          queue_size: int, workers: int, drift_interval: float = 120.0) -> int:
    from gitops_tool.config import find_config
    from gitops_tool.webhook.server import serve as run
    from gitops_tool.webhook.settings import ReceiverSettings, load_secrets

    settings = ReceiverSettings(
        secrets=load_secrets(Path(secret_file) if secret_file else None),
        config_path=Path(config) if config else find_config(),
        host=host, port=port, mode=mode, repo_url=repo_url, branch=branch, tracking_uri=tracking_uri,
        github_repo=github_repository, github_api_url=github_api_url, queue_size=queue_size, workers=workers,
        drift_interval=drift_interval,
    )
    run(settings)
    return 0


def register(*, url: str, secret_file: str | None, tracking_uri: str | None, config: str | None, name: str,
             rotate: bool, output: str = "text") -> int:
    from gitops_tool.config import find_config, load_config
    from gitops_tool.registry import RegistryClient, resolve_tracking_uri
    from gitops_tool.webhook.register import register_webhook, server_settings_needed
    from gitops_tool.webhook.settings import load_secrets

    secret = load_secrets(Path(secret_file) if secret_file else None)[0]
    configured = None
    if config or tracking_uri is None:
        try:
            configured = load_config(Path(config) if config else find_config()).mlflow.get("tracking_uri")
        except GitopsError:  # no gitops.yaml is fine when the URI comes from elsewhere; bugs still surface
            if config:
                raise
    uri = resolve_tracking_uri(tracking_uri, configured)
    needed = server_settings_needed(url)
    with RegistryClient(uri) as client:
        try:
            action, hook = register_webhook(client, url=url, secret=secret, name=name, update_secret=rotate)
        except GitopsError as exc:
            if not needed:
                raise
            # A default MLflow refuses http and private addresses; say which server settings allow this URL.
            raise GitopsError(str(exc.args[0]), retryable=exc.retryable,
                              hint="the MLflow server needs these settings for this URL: " + "; ".join(needed)
                              ) from None
    if output == "json":
        out_json({"ok": True, "action": action, "name": name, "webhook_id": hook.get("webhook_id"), "url": url,
                  "events": ["MODEL_VERSION_ALIAS CREATED", "MODEL_VERSION_ALIAS DELETED"],
                  "server_settings_needed": needed})
        return 0
    out(f"{action}: MLflow webhook {name!r} ({hook.get('webhook_id')}) -> {url} "
        "for MODEL_VERSION_ALIAS CREATED and DELETED")
    if needed:
        out("The MLflow server needs these settings for this URL:")
        for line in needed:
            out(f"  - {line}")
    return 0


def demo(*, directory: str | None, keep: bool, serve_model: bool, output: str) -> int:
    from gitops_tool.demo.story import run_demo

    return run_demo(Path(directory) if directory else None, keep=keep, serve=serve_model, output=output)
