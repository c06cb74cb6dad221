"""The command groups: `webhook`, `secrets` and `schemas` (wired into the CLI by cli/main.py)."""

from __future__ import annotations

import click

from gitops_tool.cli import secrets_commands, webhook_commands
from gitops_tool.cli.options import config_option, output_option, tracking_option
from gitops_tool.cli.options import exit_with as _run


@click.group()
def webhook() -> None:
    """The MLflow webhook receiver and its registration."""


@webhook.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--mode", type=click.Choice(["dispatch", "promote"]), default="promote", show_default=True,
              help="promote: commit in a warm clone of --repo-url; dispatch: GitHub repository_dispatch.")
@click.option("--repo-url", help="GitOps repository the promotions commit to (promote mode).")
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
@output_option
def webhook_register(url: str, secret_file: str | None, name: str, rotate_secret: bool, config_path: str | None,
                     tracking_uri: str | None, output: str) -> None:
    """Create or update the MLflow webhook for alias CREATED and DELETED events (idempotent by name)."""
    _run(webhook_commands.register(url=url, secret_file=secret_file, tracking_uri=tracking_uri,
                                   config=config_path, name=name, rotate=rotate_secret, output=output))



@click.group()
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
@click.option("--sha", "use_sha", is_flag=True,
              help="{SHA}: the only scheme Envoy Gateway accepts (edge kind gateway-api); use a long random password.")
@click.password_option("--password", prompt=True, confirmation_prompt=True, help="Prompted for when omitted.")
def secrets_htpasswd(user: str, use_bcrypt: bool, use_sha: bool, password: str) -> None:
    """Print a basic-auth entry for USER (the mlflow-basic-auth Secret: key `auth`, or `.htpasswd` with gateway-api)."""
    if use_bcrypt and use_sha:
        raise click.UsageError("--bcrypt and --sha cannot be combined")
    algorithm = "bcrypt" if use_bcrypt else "sha" if use_sha else "apr1"
    _run(secrets_commands.htpasswd(user=user, password=password, algorithm=algorithm))


@secrets.command("list")
@config_option
@output_option
def secrets_list(config_path: str | None, output: str) -> None:
    """The Secrets the platform reads, their keys and how each environment provides them."""
    _run(secrets_commands.list_secrets(config=config_path, output=output))


@click.group()
def schemas() -> None:
    """CRD schemas from a live cluster, for `validate --schema-dir` (they win over the packaged ones)."""


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

GROUPS = (webhook, secrets, schemas)
