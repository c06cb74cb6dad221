"""Options every command shares, and the exit helper (click, so under cli/)."""

from __future__ import annotations

import sys

import click

OUTPUT = "gitops_tool.output"  # ctx.meta key (meta is shared by every nested context): the -o of this run


def exit_with(code: int) -> None:
    sys.exit(code)


def _remember_output(ctx: click.Context, _param: click.Parameter, value: str) -> str:
    ctx.meta[OUTPUT] = value  # the boundary prints failures as JSON too
    return value


output_option = click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text",
                             show_default=True, callback=_remember_output, is_eager=True,
                             help="json: one JSON document on stdout, failures included.")

config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), default=None,
    help="Path to gitops.yaml (default: ./gitops.yaml or the nearest parent's).",
)

tracking_option = click.option("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, "
                                                      "then gitops.yaml).")
