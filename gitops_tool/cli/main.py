"""The command line (cli/ is the only package that imports click). Commands live in cli/commands.py and
the other cli/*_commands.py; the webhook, secrets and schemas groups in cli/group_commands.py."""

from __future__ import annotations

import sys

import click

from gitops_tool import __version__
from gitops_tool.cli import (
    canary_commands, cluster_commands, commands, doctor_commands, promotion_commands, webhook_commands,
)
from gitops_tool.cli.group_commands import GROUPS
from gitops_tool.cli.options import OUTPUT, config_option, output_option, tracking_option
from gitops_tool.cli.options import exit_with as _run
from gitops_tool.cli.output import error_json
from gitops_tool.errors import GitopsError, UsageError

EXIT_ERROR = 1  # expected failure (GitopsError)
EXIT_BUG = 3    # anything else
EXIT_USAGE = 2  # bad command line (as click's own usage errors)
EXIT_PIPE = 141  # stdout closed by the reader (128 + SIGPIPE), as other Unix tools report it


def _quiet_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's final flush cannot fail again."""
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


class Boundary(click.Group):
    """The one error boundary: GitopsError → message + exit 1; anything else → traceback + exit 3."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except UsageError as exc:
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_USAGE)
        except BrokenPipeError:
            _quiet_stdout()  # `gitops-tool history | head -1`: the reader left; not a bug
            ctx.exit(EXIT_PIPE)
        except GitopsError as exc:
            if ctx.meta.get(OUTPUT) == "json":
                error_json(exc.args[0] if exc.args else str(exc), hint=exc.hint, retryable=exc.retryable)
            click.echo(f"error: {exc}", err=True)
            ctx.exit(EXIT_ERROR)
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except Exception:  # noqa: BLE001 - a bug: show it, distinctly
            import traceback

            traceback.print_exc()
            if ctx.meta.get(OUTPUT) == "json":
                error_json("internal error in gitops-tool (a bug); the traceback is on stderr", exit_code=EXIT_BUG)
            click.echo("error: internal error in gitops-tool (a bug); the traceback is above", err=True)
            ctx.exit(EXIT_BUG)


@click.group(cls=Boundary, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gitops-tool")
def cli() -> None:
    """Run an MLflow platform on Kubernetes the GitOps way.

    gitops.yaml describes the platform; `generate` writes Kustomize from it;
    `promote` turns an MLflow registry alias into a Git commit that Argo CD syncs.
    """


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--repo-url", help="Git URL Argo CD syncs from (default: a placeholder `validate` warns about).")
@click.option("--registry", help="Where your images live, e.g. ghcr.io/acme: the model images and the "
                                 "gitops-tool receiver image (default: placeholders).")
@click.option("--host", "domain", help="Domain for the MLflow host: mlflow.DOMAIN (default: an example.com placeholder).")
@click.option("--prod-cluster", help="API server URL of the cluster prod serves on, as registered in Argo CD, or "
                                     "`in-cluster` to serve prod next to the platform (default: a placeholder).")
@click.option("--prod-approval", type=click.Choice(["pull_request", "direct"]), default="pull_request",
              show_default=True, help="How promotions reach prod: a reviewed GitHub pull request, or directly "
                                      "(needed when --repo-url is not a GitHub repository).")
@output_option
def init(directory: str, repo_url: str | None, registry: str | None, domain: str | None, prod_cluster: str | None,
         prod_approval: str, output: str) -> None:
    """Write a starter gitops.yaml (wine-classifier example) and generate the tree."""
    _run(commands.init(directory, repo_url, registry=registry, domain=domain, prod_cluster=prod_cluster,
                       prod_approval=prod_approval, output=output))


@cli.command()
@config_option
@click.option("--check", is_flag=True, help="Write nothing; print a diff and exit 1 on drift.")
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing; exit 0.")
@click.option("--prune", is_flag=True, help="Allow dropping a model still served in an environment, a whole "
                                             "environment or a platform instance (its Argo CD Application and "
                                             "workloads go with it).")
@output_option
def generate(config_path: str | None, check: bool, dry_run: bool, prune: bool, output: str) -> None:
    """(Re)write base/, environments/ and argocd/ from gitops.yaml."""
    _run(commands.generate(config_path, check=check, dry_run=dry_run, prune=prune, output=output))


@cli.command()
@config_option
@click.argument("env")
def render(config_path: str | None, env: str) -> None:
    """Print the `kustomize build` output of one environment."""
    _run(commands.render(config_path, env))


@cli.command()
@config_option
@click.argument("envs", nargs=-1)
@click.option("--schema-dir", type=click.Path(file_okay=False, exists=True),
              help="Folder of CRD JSON Schemas (<group>/<kind>_<version>.json, e.g. from `schemas pull`); "
                   "they win over the schemas packaged with gitops-tool.")
@click.option("--allow-unchecked", is_flag=True, help="Do not fail on CRD kinds that have no schema.")
@click.option("--strict", is_flag=True, help="Fail on warnings too: placeholder registries, repository URLs "
                                             "and hosts that would break a real sync.")
@output_option
def validate(config_path: str | None, envs: tuple[str, ...], schema_dir: str | None, allow_unchecked: bool,
             strict: bool, output: str) -> None:
    """Render environments (default: all) and check schemas, CRDs and the project's rules."""
    _run(commands.validate(config_path, list(envs), schema_dir, allow_unchecked=allow_unchecked, strict=strict,
                           output=output))


NO_PUSH_HELP = ("Commit on the remote's tip but do not push: the commit is kept on the local branch "
                "gitops-tool/unpushed/ENV/MODEL (your own branch is not touched).")


def _exclusive(**flags: bool) -> None:
    """Contradictory flags are a usage error (exit 2), not silently combined."""
    given = [f"--{name.replace('_', '-')}" for name, on in flags.items() if on]
    if len(given) > 1:
        raise click.UsageError(f"{' and '.join(given)} cannot be combined")


@cli.command()
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


@cli.command()
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


@cli.command()
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


@cli.command()
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


@cli.command()
@click.argument("model")
@click.option("--env", help="Only this environment.")
@config_option
@output_option
def history(model: str, env: str | None, config_path: str | None, output: str) -> None:
    """List promotions, rollbacks and releases of MODEL, from the commit trailers."""
    _run(promotion_commands.history(model, env, config=config_path, output=output))


context_option = click.option("--context", help="kubeconfig context (default: the current one).")
kubeconfig_option = click.option("--kubeconfig", type=click.Path(dir_okay=False),
                                 help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, else in-cluster).")


@cli.command()
@click.option("--cluster", is_flag=True, help="Ask the cluster instead: Argo CD sync/health/revision and "
                                              "each InferenceService's Ready condition and version.")
@context_option
@kubeconfig_option
@config_option
@output_option
@tracking_option
def status(cluster: bool, context: str | None, kubeconfig: str | None, config_path: str | None, output: str,
           tracking_uri: str | None) -> None:
    """Per model and environment: the version in Git, the registry's aliases, drift and holds."""
    if cluster:
        _run(cluster_commands.status(config=config_path, context=context, kubeconfig=kubeconfig, output=output))
    _run(promotion_commands.status(config=config_path, output=output, tracking_uri=tracking_uri))


@cli.command()
@click.option("--env", required=True, help="Environment whose Git state to wait for.")
@click.option("--model", help="Only this model (needed with --version when the env serves several).")
@click.option("--version", "version", help="Model version the InferenceService must be annotated with "
                                           "(default: the version Git deploys).")
@click.option("--timeout", default=600.0, show_default=True, type=click.FloatRange(0), help="Seconds.")
@click.option("--interval", default=5.0, show_default=True, type=click.FloatRange(0.1), help="Seconds between polls.")
@context_option
@kubeconfig_option
@config_option
@output_option
def wait(env: str, model: str | None, version: str | None, timeout: float, interval: float, context: str | None,
         kubeconfig: str | None, config_path: str | None, output: str) -> None:
    """Wait until ENV's latest commit is synced by Argo CD and its InferenceServices are Ready."""
    _run(cluster_commands.wait(env=env, model=model, version=version, timeout=timeout, interval=interval,
                               config=config_path, context=context, kubeconfig=kubeconfig, output=output))


@cli.command()
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


@cli.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False), help="Work here (default: a temp dir).")
@click.option("--keep", is_flag=True, help="Keep the directory and print how to explore it.")
@click.option("--serve", "serve_model", is_flag=True, help="Also load the promoted model and predict.")
@output_option
def demo(directory: str | None, keep: bool, serve_model: bool, output: str) -> None:
    """The whole loop on this machine: local MLflow, a local Git remote, real promotions."""
    _run(webhook_commands.demo(directory=directory, keep=keep, serve_model=serve_model, output=output))


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script for bash, zsh or fish.

    For example, in ~/.bashrc: eval "$(gitops-tool completion bash)"
    """
    from click.shell_completion import get_completion_class

    complete = get_completion_class(shell)(cli, {}, "gitops-tool", "_GITOPS_TOOL_COMPLETE")
    click.echo(complete.source())


for group in GROUPS:
    cli.add_command(group)


@cli.command()
@click.option("--cluster", is_flag=True, help="Check them through the kubernetes client (kubeconfig or in-cluster).")
@click.option("--for", "target", default="in-cluster", show_default=True,
              help="Which cluster of gitops.yaml (argocd.clusters) the context points at.")
@click.option("--approval", is_flag=True, help="Who may deploy: the GitHub branch protection and MLflow auth "
                                               "approval needs, checked through their APIs.")
@context_option
@kubeconfig_option
@config_option
@output_option
@tracking_option
def doctor(cluster: bool, target: str, approval: bool, context: str | None, kubeconfig: str | None,
           config_path: str | None, output: str, tracking_uri: str | None) -> None:
    """What the clusters must provide (Argo CD, ingress-nginx, ESO or sealed-secrets, the Prometheus
    Operator, KServe and its mode, cert-manager, their CRDs); --cluster checks one of them;
    --approval checks GitHub's branch protection and the registry's auth."""
    if approval:
        _run(doctor_commands.approval(config=config_path, output=output, tracking_uri=tracking_uri))
    _run(doctor_commands.doctor(config=config_path, cluster=cluster, target=target, context=context,
                                kubeconfig=kubeconfig, output=output))


def main() -> None:
    cli(prog_name="gitops-tool")


if __name__ == "__main__":
    main()
