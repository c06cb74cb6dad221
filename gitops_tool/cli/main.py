"""The command line: the only module that imports click. Commands live in cli/commands.py."""

from __future__ import annotations

import sys

import click

from gitops_tool import __version__
from gitops_tool.cli import commands
from gitops_tool.errors import GitopsError

EXIT_ERROR = 1  # expected failure (GitopsError)
EXIT_BUG = 3    # anything else


class Boundary(click.Group):
    """The one error boundary: GitopsError → message + exit 1; anything else → traceback + exit 3."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except GitopsError as exc:
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
            click.echo("error: internal error in gitops-tool (a bug); the traceback is above", err=True)
            ctx.exit(EXIT_BUG)


def _run(code: int) -> None:
    sys.exit(code)


config_option = click.option(
    "--config", "config_path", type=click.Path(dir_okay=False), default=None,
    help="Path to gitops.yaml (default: ./gitops.yaml or the nearest parent's).",
)


@click.group(cls=Boundary, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="gitops-tool")
def cli() -> None:
    """Run an MLflow platform on Kubernetes the GitOps way.

    gitops.yaml describes the platform; `generate` writes Kustomize from it;
    `promote` turns an MLflow registry alias into a Git commit that Argo CD syncs.
    """


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--repo-url", help="Git URL to write into gitops.yaml (default: an example URL).")
def init(directory: str, repo_url: str | None) -> None:
    """Write a starter gitops.yaml (wine-classifier example) and generate the tree."""
    _run(commands.init(directory, repo_url))


@cli.command()
@config_option
@click.option("--check", is_flag=True, help="Write nothing; print a diff and exit 1 on drift.")
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing; exit 0.")
def generate(config_path: str | None, check: bool, dry_run: bool) -> None:
    """(Re)write base/, environments/<env>/ and argocd/ from gitops.yaml."""
    _run(commands.generate(config_path, check=check, dry_run=dry_run))


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
              help="Folder of CRD JSON Schemas (<group>/<kind>_<version>.json).")
@click.option("--allow-unchecked", is_flag=True, help="Do not fail on CRD kinds that have no schema.")
def validate(config_path: str | None, envs: tuple[str, ...], schema_dir: str | None, allow_unchecked: bool) -> None:
    """Render environments (default: all) and check schemas, CRDs and the project's rules."""
    _run(commands.validate(config_path, list(envs), schema_dir, allow_unchecked=allow_unchecked))


def main() -> None:
    cli(prog_name="gitops-tool")


if __name__ == "__main__":
    main()
