"""The command line (cli/ is the only package that imports click). The click wiring of promote, rollback,
release, retire, history and reconcile is in cli/promotion_cli.py, the webhook, secrets and schemas groups
in cli/group_commands.py; what each command does is in cli/commands.py and the other cli/*_commands.py."""

from __future__ import annotations

import sys

import click

from gitops_tool import __version__
from gitops_tool.cli import cluster_commands, commands, doctor_commands, promotion_commands, webhook_commands
from gitops_tool.cli.group_commands import GROUPS
from gitops_tool.cli.promotion_cli import PROMOTION_COMMANDS
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


for command in [*PROMOTION_COMMANDS, *GROUPS]:
    cli.add_command(command)


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
