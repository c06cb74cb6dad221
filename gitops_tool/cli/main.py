"""The command line: the only module that imports click. Commands live in cli/commands.py."""

from __future__ import annotations

import sys

import click

from gitops_tool import __version__
from gitops_tool.cli import (
    cluster_commands, commands, doctor_commands, promotion_commands, secrets_commands, webhook_commands,
)
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


output_option = click.option("--output", "-o", type=click.Choice(["text", "json"]), default="text",
                             show_default=True)
tracking_option = click.option("--tracking-uri", help="MLflow tracking URI (default: MLFLOW_TRACKING_URI, "
                                                      "then gitops.yaml).")


@cli.command()
@click.argument("ref")
@click.option("--env", help="Environment to promote to (default: from the alias map in gitops.yaml).")
@click.option("--image-tag", help="Image tag, digest (sha256:...) or full reference to deploy.")
@click.option("--no-push", is_flag=True, help="Commit locally, do not push.")
@click.option("--dry-run", is_flag=True, help="Resolve, run the gates, edit and validate; then undo. No commit.")
@click.option("--pr", is_flag=True, help="Push a branch and open (or reuse) a GitHub pull request.")
@click.option("--force", is_flag=True, help="Promote over a hold placed by rollback.")
@click.option("--repo-url", help="Work in a fresh shallow clone of this repository instead of the checkout.")
@click.option("--branch", help="Branch to clone with --repo-url (default: main).")
@click.option("--trigger", type=click.Choice(["manual", "workflow", "webhook", "reconcile"]), default="manual",
              help="Recorded in the commit's Trigger: trailer; automatic triggers skip holds.")
@config_option
@output_option
@tracking_option
def promote(ref: str, env: str | None, image_tag: str | None, no_push: bool, dry_run: bool, pr: bool, force: bool,
            repo_url: str | None, branch: str | None, trigger: str, config_path: str | None, output: str,
            tracking_uri: str | None) -> None:
    """Promote REF (MODEL@ALIAS, MODEL/VERSION or models:/MODEL@ALIAS) with a Git commit."""
    from pathlib import Path

    from gitops_tool.promotion.model import PromotionRequest

    req = PromotionRequest(ref=ref, env=env, image_tag=image_tag, push=not no_push, dry_run=dry_run, pr=pr,
                           force=force, tracking_uri=tracking_uri, repo_url=repo_url, trigger=trigger,
                           config_path=Path(config_path) if config_path else None)
    _run(promotion_commands.promote(req, output=output, branch=branch))


@cli.command()
@click.argument("model")
@click.option("--env", required=True, help="Environment to roll back.")
@click.option("--to", "to_version", help="Version to go back to (default: the one before the current).")
@click.option("--no-push", is_flag=True, help="Commit locally, do not push.")
@config_option
@output_option
@tracking_option
def rollback(model: str, env: str, to_version: str | None, no_push: bool, config_path: str | None, output: str,
             tracking_uri: str | None) -> None:
    """Put ENV back on the previous (or a named) version and hold it there."""
    _run(promotion_commands.rollback(model, env, to_version, config=config_path, push=not no_push, output=output,
                                     tracking_uri=tracking_uri))


@cli.command()
@click.argument("model")
@click.option("--env", required=True, help="Environment whose hold to lift.")
@click.option("--no-push", is_flag=True, help="Commit locally, do not push.")
@config_option
@output_option
def release(model: str, env: str, no_push: bool, config_path: str | None, output: str) -> None:
    """Lift a rollback's hold so automatic promotions resume."""
    _run(promotion_commands.release(model, env, config=config_path, push=not no_push, output=output))


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


@cli.group()
def webhook() -> None:
    """The MLflow webhook receiver and its registration."""


@webhook.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--mode", type=click.Choice(["dispatch", "promote"]), default="promote", show_default=True,
              help="promote: commit in a fresh clone of --repo-url; dispatch: GitHub repository_dispatch.")
@click.option("--repo-url", help="GitOps repository to clone for each promotion (promote mode).")
@click.option("--branch", help="Branch of --repo-url (default: main).")
@click.option("--secret-file", type=click.Path(dir_okay=False),
              help="File with the HMAC secret (default: $GITOPS_TOOL_WEBHOOK_SECRET). Never an argument.")
@click.option("--github-repository", help="owner/name to send repository_dispatch to (dispatch mode).")
@click.option("--github-api-url", default="https://api.github.com", show_default=True)
@click.option("--queue-size", default=100, show_default=True, type=click.IntRange(1, 100000))
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--drift-interval", default=120.0, show_default=True, type=click.FloatRange(0),
              help="Promote mode: seconds between registry/Git drift checks (the gitops_drift gauge); 0 turns "
                   "them off.")
@config_option
@tracking_option
def webhook_serve(host: str, port: int, mode: str, repo_url: str | None, branch: str | None,
                  secret_file: str | None, github_repository: str | None, github_api_url: str, queue_size: int,
                  workers: int, drift_interval: float, config_path: str | None, tracking_uri: str | None) -> None:
    """Receive MLflow webhooks at POST /webhooks/mlflow and promote (or dispatch) alias moves."""
    _run(webhook_commands.serve(host=host, port=port, mode=mode, repo_url=repo_url, branch=branch,
                                secret_file=secret_file, config=config_path, tracking_uri=tracking_uri,
                                github_repository=github_repository, github_api_url=github_api_url,
                                queue_size=queue_size, workers=workers, drift_interval=drift_interval))


@webhook.command("register")
@click.option("--url", required=True, help="The receiver's URL, e.g. http://gitops-webhook:8080/webhooks/mlflow.")
@click.option("--secret-file", type=click.Path(dir_okay=False),
              help="File with the HMAC secret (default: $GITOPS_TOOL_WEBHOOK_SECRET).")
@click.option("--name", default="gitops-tool", show_default=True, help="Webhook name: the idempotency key.")
@click.option("--rotate-secret", is_flag=True, help="Also update the stored secret of an existing webhook.")
@config_option
@tracking_option
def webhook_register(url: str, secret_file: str | None, name: str, rotate_secret: bool, config_path: str | None,
                     tracking_uri: str | None) -> None:
    """Create or update the MLflow webhook for alias CREATED and DELETED events (idempotent by name)."""
    _run(webhook_commands.register(url=url, secret_file=secret_file, tracking_uri=tracking_uri,
                                   config=config_path, name=name, rotate=rotate_secret))


@cli.command()
@click.option("--dir", "directory", type=click.Path(file_okay=False), help="Work here (default: a temp dir).")
@click.option("--keep", is_flag=True, help="Keep the directory and print how to explore it.")
@click.option("--serve", "serve_model", is_flag=True, help="Also load the promoted model and predict.")
@output_option
def demo(directory: str | None, keep: bool, serve_model: bool, output: str) -> None:
    """The whole loop on this machine: local MLflow, a local Git remote, real promotions."""
    _run(webhook_commands.demo(directory=directory, keep=keep, serve_model=serve_model, output=output))


@cli.group()
def secrets() -> None:
    """Provide the platform's Secrets without putting values in Git."""


@secrets.command("seal")
@click.option("--env", required=True,
              help="Overlay whose namespace the SealedSecret is bound to: platform/<instance> or a serving environment.")
@click.option("--name", required=True, help="Secret name, e.g. postgres-credentials (see `secrets list`).")
@click.option("--cert", required=True, type=click.Path(dir_okay=False),
              help="The controller's public certificate (kubeseal --fetch-cert > cert.pem).")
@click.option("--from-env-file", "env_file", type=click.Path(dir_okay=False), help="KEY=VALUE lines to seal.")
@click.option("--from-literal", "literals", multiple=True, help="KEY=VALUE (visible in shell history).")
@click.option("--scope", type=click.Choice(["strict", "namespace-wide"]), help="Default: gitops.yaml's scope.")
@config_option
def secrets_seal(env: str, name: str, cert: str, env_file: str | None, literals: tuple[str, ...],
                 scope: str | None, config_path: str | None) -> None:
    """Encrypt a Secret for the sealed-secrets controller into ENV's overlay, sealed/NAME.yaml."""
    _run(secrets_commands.seal(config=config_path, env=env, name=name, cert=cert, env_file=env_file,
                               literals=literals, scope=scope))


@secrets.command("htpasswd")
@click.argument("user")
@click.option("--bcrypt", "use_bcrypt", is_flag=True, help="bcrypt instead of apr1 (nginx accepts both).")
@click.password_option("--password", prompt=True, confirmation_prompt=True, help="Prompted for when omitted.")
def secrets_htpasswd(user: str, use_bcrypt: bool, password: str) -> None:
    """Print an nginx basic-auth entry for USER (for the mlflow-basic-auth Secret's `auth` key)."""
    _run(secrets_commands.htpasswd(user=user, password=password, algorithm="bcrypt" if use_bcrypt else "apr1"))


@secrets.command("list")
@config_option
def secrets_list(config_path: str | None) -> None:
    """The Secrets the platform reads, their keys and how each environment provides them."""
    _run(secrets_commands.list_secrets(config=config_path))


@cli.group()
def schemas() -> None:
    """CRD schemas for `validate --schema-dir`."""


@schemas.command("pull")
@click.option("--context", help="kubeconfig context (default: the current one).")
@click.option("--kubeconfig", type=click.Path(dir_okay=False), help="Default: $KUBECONFIG or ~/.kube/config.")
@click.option("--out", "out_dir", default="schemas", show_default=True, type=click.Path(file_okay=False))
@click.option("--group", "groups", multiple=True, help="Only these API groups (repeatable).")
def schemas_pull(context: str | None, kubeconfig: str | None, out_dir: str, groups: tuple[str, ...]) -> None:
    """Write JSON Schemas of the cluster's CRDs (<group>/<kind>_<version>.json) into --out."""
    from pathlib import Path

    from gitops_tool.cli.output import out
    from gitops_tool.cluster.schemas_pull import pull

    written = pull(Path(out_dir), context=context, kubeconfig=kubeconfig, groups=list(groups) or None)
    for path in written:
        out(f"   write  {path}")
    out(f"{len(written)} schema(s) in {out_dir}; use: gitops-tool validate --schema-dir {out_dir}")
    _run(0)


@cli.command()
@click.option("--cluster", is_flag=True, help="Check them through the kubernetes client (kubeconfig or in-cluster).")
@click.option("--for", "target", default="in-cluster", show_default=True,
              help="Which cluster of gitops.yaml (argocd.clusters) the context points at.")
@context_option
@kubeconfig_option
@config_option
@output_option
def doctor(cluster: bool, target: str, context: str | None, kubeconfig: str | None, config_path: str | None,
           output: str) -> None:
    """What the clusters must provide (Argo CD, ingress-nginx, ESO or sealed-secrets, the Prometheus
    Operator, KServe and its mode, cert-manager, their CRDs); --cluster checks one of them."""
    _run(doctor_commands.doctor(config=config_path, cluster=cluster, target=target, context=context,
                                kubeconfig=kubeconfig, output=output))


def main() -> None:
    cli(prog_name="gitops-tool")


if __name__ == "__main__":
    main()
