"""`promote --canary N`, `promote --complete MODEL --env E`, `promote --abort MODEL --env E`, `--reason`.

The options are added to `promote` by `options`; with --complete or --abort, REF is the model's name.
"""

from __future__ import annotations

from pathlib import Path

import click

from gitops_tool.cli.promotion_commands import _report


def options(command):
    for option in reversed([
        click.option("--canary", type=int, metavar="PERCENT",
                     help="Serverless environments: deploy REF beside the current version with PERCENT (1-99) of "
                          "the traffic (KServe canaryTrafficPercent); finish with --complete or --abort."),
        click.option("--complete", is_flag=True,
                     help="REF is a model: run the environment's verify checks, then give the running canary "
                          "all the traffic (a failed check aborts it instead)."),
        click.option("--abort", is_flag=True,
                     help="REF is a model: go back to the stable version of the running canary and hold it."),
        click.option("--reason", help="Why: recorded with --force (over a soak or a failed verification) and "
                                      "--abort."),
    ]):
        command = option(command)
    return command


def finish(model: str, env: str | None, *, complete: bool, config: str | None, push: bool, dry_run: bool,
           output: str, tracking_uri: str | None, reason: str | None) -> int:
    from gitops_tool.promotion.canary import finish as run

    if not env:
        raise click.UsageError("--complete and --abort need --env ENV")
    result = run(model, env, "complete" if complete else "abort", config_path=Path(config) if config else None,
                 push=push, dry_run=dry_run, tracking_uri=tracking_uri, reason=reason)
    return _report(result, output)
