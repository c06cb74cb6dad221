"""The click wiring of the commands that change what an environment serves, and their history.

promote, rollback, release, retire, history and reconcile; main.py adds them to the `gitops-tool` group
(its Boundary is the one error boundary). What each does is in cli/promotion_commands.py.
"""

from __future__ import annotations

import click

from gitops_tool.cli import canary_commands, promotion_commands
from gitops_tool.cli.options import config_option, output_option, tracking_option
from gitops_tool.cli.options import exit_with as _run


NO_PUSH_HELP = ("Commit on the remote's tip but do not push: the commit is kept on the local branch "
                "gitops-tool/unpushed/ENV/MODEL (your own branch is not touched).")


def _exclusive(**flags: bool) -> None:
    """Contradictory flags are a usage error (exit 2), not silently combined."""
    given = [f"--{name.replace('_', '-')}" for name, on in flags.items() if on]
    if len(given) > 1:
        raise click.UsageError(f"{' and '.join(given)} cannot be combined")


@click.command()
@click.argument("ref")
@click.option("--env", help="Environment to promote to (default: from the alias map in gitops.yaml).")
@click.option("--image-tag", help="Image tag, digest (sha256:...) or full reference to deploy.")
@click.option("--no-push", is_flag=True, help=NO_PUSH_HELP)
@click.option("--dry-run", is_flag=True, help="Resolve, run the gates, edit and validate; then undo. No commit.")
@click.option("--pr", is_flag=True, help="Push a branch and open (or reuse) a GitHub pull request.")
@click.option("--direct", is_flag=True, help="Push to the branch even where the environment's approval is "
                                             "pull_request (needs --force; the commit records the bypass).")
@click.option("--force", is_flag=True, help="Promote over a hold, a soak or a failed verification (those need "
                                            "--reason); with --direct, bypass review.")
@click.option("--repo-url", help="Work in a fresh shallow clone of this repository instead of the checkout.")
@click.option("--branch", help="Branch to clone with --repo-url (default: main).")
@click.option("--trigger", type=click.Choice(["manual", "workflow", "webhook", "reconcile"]), default="manual",
              help="Recorded in the commit's Trigger: trailer; automatic triggers skip holds.")
@click.option("--delivery-id", help="Webhook delivery that asked for this promotion (the Delivery-Id: trailer).")
@canary_commands.options
@config_option
@output_option
@tracking_option
def promote(ref: str, env: str | None, image_tag: str | None, no_push: bool, dry_run: bool, pr: bool, direct: bool,
            force: bool, repo_url: str | None, branch: str | None, trigger: str, delivery_id: str | None,
            config_path: str | None, output: str, tracking_uri: str | None, canary: int | None, complete: bool,
            abort: bool, reason: str | None) -> None:
    """Promote REF (MODEL@ALIAS, MODEL/VERSION or models:/MODEL@ALIAS) with a Git commit."""
    from pathlib import Path

    from gitops_tool.promotion.model import PromotionRequest

    _exclusive(pr=pr, no_push=no_push, dry_run=dry_run)
    _exclusive(pr=pr, direct=direct)
    _exclusive(canary=canary is not None, complete=complete, abort=abort)
    if complete or abort:
        _run(canary_commands.finish(ref, env, complete=complete, config=config_path, push=not no_push,
                                    dry_run=dry_run, output=output, tracking_uri=tracking_uri, reason=reason))
    req = PromotionRequest(ref=ref, env=env, image_tag=image_tag, push=not no_push, dry_run=dry_run, pr=pr,
                           direct=direct, force=force, tracking_uri=tracking_uri, repo_url=repo_url, trigger=trigger,
                           delivery_id=delivery_id, config_path=Path(config_path) if config_path else None,
                           canary=canary, reason=reason)
    _run(promotion_commands.promote(req, output=output, branch=branch))


@click.command()
@click.argument("model")
@click.option("--env", required=True, help="Environment to roll back.")
@click.option("--to", "to_version", help="Version to go back to (default: the one before the current).")
@click.option("--no-push", is_flag=True, help=NO_PUSH_HELP)
@click.option("--dry-run", is_flag=True, help="Decide, edit and validate on the remote's tip; commit nothing.")
@config_option
@output_option
@tracking_option
def rollback(model: str, env: str, to_version: str | None, no_push: bool, dry_run: bool, config_path: str | None,
             output: str, tracking_uri: str | None) -> None:
    """Put ENV back on the version deployed before the current one (or --to) and hold it there."""
    _exclusive(no_push=no_push, dry_run=dry_run)
    _run(promotion_commands.rollback(model, env, to_version, config=config_path, push=not no_push, output=output,
                                     tracking_uri=tracking_uri, dry_run=dry_run))


@click.command()
@click.argument("model")
@click.option("--env", required=True, help="Environment whose hold to lift.")
@click.option("--no-push", is_flag=True, help=NO_PUSH_HELP)
@click.option("--dry-run", is_flag=True, help="Decide, edit and validate on the remote's tip; commit nothing.")
@config_option
@output_option
def release(model: str, env: str, no_push: bool, dry_run: bool, config_path: str | None, output: str) -> None:
    """Lift a rollback's hold so automatic promotions resume."""
    _exclusive(no_push=no_push, dry_run=dry_run)
    _run(promotion_commands.release(model, env, config=config_path, push=not no_push, output=output,
                                    dry_run=dry_run))


@click.command()
@click.argument("model")
@click.option("--env", required=True, help="Environment to stop serving MODEL in.")
@click.option("--no-push", is_flag=True, help=NO_PUSH_HELP)
@click.option("--dry-run", is_flag=True, help="Edit and validate on the remote's tip; commit nothing.")
@config_option
@output_option
def retire(model: str, env: str, no_push: bool, dry_run: bool, config_path: str | None, output: str) -> None:
    """Stop serving MODEL in ENV with a commit (before removing it from gitops.yaml)."""
    _exclusive(no_push=no_push, dry_run=dry_run)
    _run(promotion_commands.retire(model, env, config=config_path, push=not no_push, output=output,
                                   dry_run=dry_run))


@click.command()
@click.argument("model")
@click.option("--env", help="Only this environment.")
@config_option
@output_option
def history(model: str, env: str | None, config_path: str | None, output: str) -> None:
    """List promotions, rollbacks and releases of MODEL, from the commit trailers."""
    _run(promotion_commands.history(model, env, config=config_path, output=output))


@click.command()
@click.option("--dry-run", is_flag=True, help="Report the drift; promote nothing.")
@click.option("--no-push", is_flag=True, help="Commit locally, do not push.")
@click.option("--repo-url", help="Work in a fresh shallow clone of this repository instead of the checkout.")
@click.option("--branch", help="Branch to clone with --repo-url (default: main).")
@config_option
@output_option
@tracking_option
def reconcile(dry_run: bool, no_push: bool, repo_url: str | None, branch: str | None, config_path: str | None,
              output: str, tracking_uri: str | None) -> None:
    """Compare every mapped alias in the registry with Git and promote the drift (skips holds)."""
    _run(promotion_commands.reconcile(config=config_path, repo_url=repo_url, branch=branch,
                                      tracking_uri=tracking_uri, dry_run=dry_run, push=not no_push,
                                      output=output))


PROMOTION_COMMANDS = [promote, rollback, release, retire, history, reconcile]
