"""CLI conventions (issue 14, 3 and 7): `-o json` on every command that reports, failures as JSON on stdout,
`completion`, init's real values, placeholder warnings and --strict, `status` with a dead registry, and
`webhook register` naming the MLflow server settings. The real console entry point in subprocesses; a
real `mlflow server` with MLflow's default webhook schemes for the register test."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from gitops_tool.config import load_config_text
from gitops_tool.mlflow_local import LocalMlflowServer
from gitops_tool.project import starter_config
from gitops_tool.validate.placeholders import placeholder_findings, reserved_host
from tests.conftest import run_cli

REAL = ("--repo-url", "https://github.com/acme/ml-platform.git", "--registry", "ghcr.io/acme", "--host", "ml.acme.io",
        "--prod-cluster", "https://prod.k8s.acme.io")


def as_json(result) -> dict:
    assert result.stdout.lstrip().startswith("{"), result.stdout + result.stderr
    return json.loads(result.stdout)


def test_init_takes_real_values_and_then_validate_strict_passes(tmp_path: Path):
    made = run_cli("init", "platform", *REAL, "-o", "json", cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    data = as_json(made)
    assert data["ok"] and {"path": "base/platform/kustomization.yaml", "action": "create"} in data["files"]
    text = (tmp_path / "platform" / "gitops.yaml").read_text()
    for value in ("url: https://github.com/acme/ml-platform.git", "image_repository: ghcr.io/acme/wine-classifier",
                  "gitops_tool: ghcr.io/acme/gitops-tool:", "host: mlflow.ml.acme.io", "prod: https://prod.k8s.acme.io",
                  "package: gitops-tool=="):
        assert value in text, value
    assert "example" not in text.replace("# ", "")
    from gitops_tool import __version__
    receiver = (tmp_path / "platform" / "base" / "platform" / "receiver" / "webhook-receiver.yaml").read_text()
    images = {line.split("image:")[1].strip() for line in receiver.splitlines() if "image:" in line}
    assert images == {f"ghcr.io/acme/gitops-tool:{__version__}"}  # the receiver and its register Job
    checked = run_cli("validate", "--strict", "-o", "json", cwd=tmp_path / "platform")
    result = as_json(checked)
    assert checked.returncode == 0 and result["ok"] and result["warnings"] == 0 and result["unchecked"] == 0


@pytest.mark.parametrize("flag, value, message", [
    ("--registry", "GHCR.IO/Acme Corp", "not a registry path"),
    ("--host", "not a domain", "not a domain name"),
])
def test_init_refuses_bad_values_and_writes_nothing(tmp_path: Path, flag: str, value: str, message: str):
    result = run_cli("init", "platform", flag, value, cwd=tmp_path)
    assert result.returncode == 1 and message in result.stderr and flag in result.stderr
    assert not (tmp_path / "platform").exists()


def test_validate_warns_on_each_placeholder_and_strict_fails(project: Path):
    relaxed = run_cli("validate", "-o", "json", cwd=project)
    data = as_json(relaxed)
    assert relaxed.returncode == 0 and data["ok"] and data["errors"] == 0
    fields = {f["path"] for f in data["findings"] if f["severity"] == "warning"}
    assert fields == {"repo.url", "images.gitops_tool", "models.wine-classifier.image_repository",
                      "platform.instances.main.host", "argocd.clusters.prod"}
    strict = run_cli("validate", "--strict", cwd=project)
    assert strict.returncode == 1
    assert "warning: config: gitops.yaml/mlflow-platform: repo.url: 'https://github.com/example-org/" in strict.stdout
    assert strict.stdout.rstrip().endswith("5 warning(s) (--strict)")


@pytest.mark.parametrize("host, reserved", [
    ("example.com", True), ("mlflow.dev.example.org", True), ("registry.example.net:5000", True),
    ("mlflow.corp.test", True), ("hooks.example", True), ("examples.com", False), ("ghcr.io", False),
    ("mlflow.acme.io", False), ("localhost", False),
])
def test_reserved_hosts(host: str, reserved: bool):
    assert reserved_host(host) is reserved


def test_placeholders_in_every_form_of_url_and_image():
    text = starter_config().replace("https://github.com/example-org/mlflow-gitops.git",
                                    "git@github.com:example-org/platform.git")
    text = text.replace("registry.example.com/ml/wine-classifier", "example-org/wine-classifier")  # Docker Hub
    text = text.replace("\nargocd:\n", "\nimages:\n  gitops_tool: ghcr.io/acme/gitops-tool:1.0.0\n"
                        "\nargocd:\n", 1)
    found = {f.path: f.message for f in placeholder_findings(load_config_text(text))}
    assert "'example-org' is the starter's placeholder owner" in found["repo.url"]
    assert "models.wine-classifier.image_repository" in found and "images.gitops_tool" not in found


def test_generate_and_secrets_list_report_json(project: Path):
    generated = as_json(run_cli("generate", "-o", "json", cwd=project))
    assert generated["ok"] and generated["written"] and generated["changed"] == []
    (project / "base" / "platform" / "mlflow.yaml").write_text("# Generated by gitops-tool from gitops.yaml.\n")
    check = run_cli("generate", "--check", "-o", "json", cwd=project)
    assert check.returncode == 1 and as_json(check)["changed"] == ["base/platform/mlflow.yaml"]
    assert not as_json(check)["ok"] and not as_json(check)["written"]
    listed = as_json(run_cli("secrets", "list", "-o", "json", cwd=project))
    postgres = next(s for s in listed["secrets"] if s["name"] == "postgres-credentials")
    assert postgres["keys"] == ["POSTGRES_USER", "POSTGRES_PASSWORD"]
    assert postgres["target"] == "platform/main" and postgres["method"] == "external"


@pytest.mark.parametrize("args", [
    ("promote", "wine-classifier@champion", "-o", "json"),     # the project is not a Git repository
    ("validate", "-o", "json", "--config", "missing.yaml"),
    ("secrets", "list", "-o", "json", "--config", "missing.yaml"),
])
def test_failures_with_json_output_are_json_on_stdout(project: Path, args: tuple[str, ...]):
    result = run_cli(*args, cwd=project)
    assert result.returncode == 1
    error = as_json(result)["error"]
    assert as_json(result)["ok"] is False and error["exit_code"] == 1 and error["message"]
    assert f"error: {error['message']}" in result.stderr  # the person at the terminal still sees it


def test_completion_scripts_complete_commands(tmp_path: Path):
    for shell in ("bash", "zsh", "fish"):
        script = run_cli("completion", shell, cwd=tmp_path)
        assert script.returncode == 0 and "_GITOPS_TOOL_COMPLETE" in script.stdout, shell
    env = dict(os.environ, COMP_WORDS="gitops-tool val", COMP_CWORD="1", _GITOPS_TOOL_COMPLETE="bash_complete")
    completed = run_cli(cwd=tmp_path, env=env)
    assert completed.stdout.split() == ["plain,validate"]


def test_status_says_the_registry_is_unreachable_not_unset(tmp_path: Path):
    from tests.promotion_fixtures import make_repo

    project = make_repo(tmp_path, None).root  # status reads the remote's tip
    dead = "http://127.0.0.1:9"
    result = run_cli("status", "--tracking-uri", dead, cwd=project)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert lines[1].startswith(f"registry unreachable ({dead}): "), result.stdout + result.stderr
    prod = next(line for line in lines if line.split()[:2] == ["wine-classifier", "prod"])
    assert "@champion=?" in prod and " unknown " in prod and "@champion=-" not in result.stdout
    data = as_json(run_cli("status", "--tracking-uri", dead, "-o", "json", cwd=project))
    assert data["registry_reachable"] is False and data["registry_error"]


class DefaultSchemesServer(LocalMlflowServer):
    """A real MLflow server with MLflow's default webhook schemes (https only)."""

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.pop("MLFLOW_WEBHOOK_ALLOWED_SCHEMES", None)
        return env


@pytest.mark.slow
def test_webhook_register_names_the_server_settings_when_mlflow_refuses(tmp_path: Path):
    server = DefaultSchemesServer(tmp_path / "mlflow")
    server.start(timeout=120)
    try:
        secret = tmp_path / "secret"
        secret.write_text("s3cret-for-the-test\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        base = ("webhook", "register", "--tracking-uri", server.url, "--secret-file", str(secret))
        refused = run_cli(*base, "--url", "http://127.0.0.1:8080/webhooks/mlflow", cwd=tmp_path, env=env)
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert "scheme" in refused.stderr.lower()
        assert "hint: the MLflow server needs these settings for this URL: MLFLOW_WEBHOOK_ALLOWED_SCHEMES" in (
            refused.stderr)
        assert "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true" in refused.stderr
        as_error = as_json(run_cli(*base, "--url", "http://127.0.0.1:8080/webhooks/mlflow", "-o", "json",
                                   cwd=tmp_path, env=env))
        assert "MLFLOW_WEBHOOK_ALLOWED_SCHEMES" in as_error["error"]["hint"]
        created = run_cli(*base, "--url", "https://127.0.0.1:8443/webhooks/mlflow", "-o", "json", cwd=tmp_path,
                          env=env)
        data = as_json(created)
        assert created.returncode == 0 and data["action"] == "created" and data["webhook_id"]
        assert any("MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS" in line for line in data["server_settings_needed"])
    finally:
        server.stop()
