"""Secrets: external, sealed and local providers; sealing that really decrypts; htpasswd in a real nginx."""

from __future__ import annotations

import base64
import os
import datetime
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import requests
import yaml

from gitops_tool.config import load_config
from gitops_tool.errors import GitopsError
from gitops_tool.mlflow_local import free_port
from gitops_tool.project import generate
from gitops_tool.secrets.htpasswd import apr1, entry
from gitops_tool.secrets.project import missing_sealed, seal_into_project
from gitops_tool.secrets.sealing import hybrid_decrypt, label
from gitops_tool.validate import scan_tree, validate_all
from tests.conftest import REPO_ROOT, render_docs, run_cli


def _set_secrets(project: Path, name: str, spec: str) -> None:
    """Replace the `secrets:` line of one platform instance or serving environment, then regenerate."""
    config = project / "gitops.yaml"
    lines = config.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.strip() == f"{name}:")
    indent = len(lines[start]) - len(lines[start].lstrip())
    for i in range(start + 1, len(lines)):
        if len(lines[i]) - len(lines[i].lstrip()) <= indent and lines[i].strip():
            raise AssertionError(f"{name} has no secrets: line in gitops.yaml")
        if lines[i].lstrip().startswith("secrets:"):
            lines[i] = " " * (indent + 2) + f"secrets: {spec}\n"
            break
    config.write_text("".join(lines))
    generate(config)


def _storage_mode(project: Path) -> None:
    """Switch the starter model to storage mode; prod moves in-cluster so it can reach the platform's MinIO."""
    config = project / "gitops.yaml"
    text = config.read_text()
    assert "    mode: image\n" in text and "    cluster: prod\n" in text
    config.write_text(text.replace("    mode: image\n", "    mode: storage\n")
                      .replace("    cluster: prod\n", "    cluster: in-cluster\n"))
    generate(config)


@pytest.fixture(scope="module")
def keypair(tmp_path_factory) -> tuple[object, Path]:
    """A throwaway RSA key and self-signed certificate, like the controller's."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sealed-secret")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    path = tmp_path_factory.mktemp("cert") / "cert.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, path


def test_external_secrets_validate_against_the_crd_schema(project: Path, schema_dir: Path):
    platform = project / "environments/platform/main"
    docs = render_docs(platform)
    external = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ExternalSecret"}
    assert set(external) == {"postgres-credentials", "minio-credentials", "mlflow-backend", "mlflow-keys",
                             "mlflow-basic-auth", "gitops-webhook", "gitops-git-credentials"}
    assert {d["metadata"]["namespace"] for d in external.values()} == {"mlflow"}
    pg = external["postgres-credentials"]["spec"]
    assert pg["secretStoreRef"] == {"name": "platform-secrets", "kind": "ClusterSecretStore"}
    assert pg["data"][1] == {"secretKey": "POSTGRES_PASSWORD",
                             "remoteRef": {"key": "mlflow/platform/postgres-credentials", "property": "POSTGRES_PASSWORD"}}
    # image-mode serving environments need no Secret at all: the platform's never leak into them
    for env in ("dev", "staging", "prod"):
        assert not [d for d in render_docs(project / "environments" / env) if d["kind"] in ("Secret", "ExternalSecret")]
    assert validate_all({"platform/main": platform}, schema_dir=schema_dir) == []


def test_storage_mode_serving_env_gets_only_the_kserve_s3_credentials(project: Path, schema_dir: Path):
    _storage_mode(project)
    docs = render_docs(project / "environments/prod")
    external = [d for d in docs if d["kind"] == "ExternalSecret"]
    assert [d["metadata"]["name"] for d in external] == ["kserve-s3-credentials"]
    spec = external[0]["spec"]
    assert external[0]["metadata"]["namespace"] == "models-prod"
    assert [d["remoteRef"] for d in spec["data"]] == [
        {"key": "models/prod/kserve-s3-credentials", "property": "AWS_ACCESS_KEY_ID"},
        {"key": "models/prod/kserve-s3-credentials", "property": "AWS_SECRET_ACCESS_KEY"}]
    # KServe's storage-initializer reads the endpoint from the Secret's annotations: the platform's MinIO
    assert spec["target"]["template"]["metadata"]["annotations"] == {
        "serving.kserve.io/s3-endpoint": "minio.mlflow.svc.cluster.local:9000",
        "serving.kserve.io/s3-usehttps": "0", "serving.kserve.io/s3-region": "us-east-1",
        "serving.kserve.io/s3-verifyssl": "1"}
    assert validate_all({"prod": project / "environments/prod"}, schema_dir=schema_dir) == []


def test_seal_writes_a_sealed_secret_that_decrypts_with_the_private_key(project: Path, keypair, schema_dir):
    key, cert = keypair
    _set_secrets(project, "main", "{method: sealed, scope: strict}")
    before = run_cli("validate", "platform/main", "--schema-dir", str(schema_dir), cwd=project)
    assert before.returncode == 1
    assert ("platform/main: SealedSecret/postgres-credentials: sealed/postgres-credentials.yaml: missing"
            in before.stdout)
    values = project / "pg.env"
    values.write_text("POSTGRES_USER=mlflow\nPOSTGRES_PASSWORD=s3cr3t-Value=with=equals\n")
    result = run_cli("secrets", "seal", "--env", "platform/main", "--name", "postgres-credentials",
                     "--cert", str(cert), "--from-env-file", str(values), cwd=project)
    assert result.returncode == 0, result.stderr
    sealed_path = project / "environments/platform/main/sealed/postgres-credentials.yaml"
    doc = yaml.safe_load(sealed_path.read_text())
    assert "s3cr3t" not in sealed_path.read_text()
    assert doc["metadata"] == {"name": "postgres-credentials", "namespace": "mlflow",
                               "annotations": {"argocd.argoproj.io/sync-wave": "-1"}}
    oaep = label("mlflow", "postgres-credentials", "strict")
    assert oaep == b"mlflow/postgres-credentials"
    plain = {k: hybrid_decrypt(key, base64.b64decode(v), oaep).decode() for k, v in doc["spec"]["encryptedData"].items()}
    assert plain == {"POSTGRES_USER": "mlflow", "POSTGRES_PASSWORD": "s3cr3t-Value=with=equals"}
    with pytest.raises(Exception):  # strict scope: bound to this namespace and name
        hybrid_decrypt(key, base64.b64decode(doc["spec"]["encryptedData"]["POSTGRES_USER"]),
                       b"models-prod/postgres-credentials")
    assert "sealed/postgres-credentials.yaml" in (project / "environments/platform/main/kustomization.yaml").read_text()
    rendered = [d for d in render_docs(project / "environments/platform/main") if d["kind"] == "SealedSecret"]
    assert [d["metadata"]["name"] for d in rendered] == ["postgres-credentials"]
    findings = validate_all({"platform/main": project / "environments/platform/main"}, schema_dir=schema_dir)
    assert findings == []
    # the other Secrets are still missing: only the sealed one is off the list validate reports
    missing = missing_sealed(load_config(project / "gitops.yaml"))
    assert ("platform/main", "mlflow-backend") in missing and ("platform/main", "postgres-credentials") not in missing


def test_sealed_kserve_credentials_carry_the_s3_annotations(project: Path, keypair, schema_dir: Path):
    """A sealed kserve-s3-credentials must unseal into a Secret KServe can use: endpoint annotations included."""
    key, cert = keypair
    _storage_mode(project)
    _set_secrets(project, "staging", "{method: sealed}")
    result = run_cli("secrets", "seal", "--env", "staging", "--name", "kserve-s3-credentials", "--cert", str(cert),
                     "--from-literal", "AWS_ACCESS_KEY_ID=reader", "--from-literal", "AWS_SECRET_ACCESS_KEY=x",
                     cwd=project)
    assert result.returncode == 0, result.stderr
    rendered = [d for d in render_docs(project / "environments/staging") if d["kind"] == "SealedSecret"]
    assert [d["metadata"]["namespace"] for d in rendered] == ["models-staging"]
    template = rendered[0]["spec"]["template"]["metadata"]
    assert template["annotations"]["serving.kserve.io/s3-endpoint"] == "minio.mlflow.svc.cluster.local:9000"
    assert template["annotations"]["serving.kserve.io/s3-usehttps"] == "0"
    oaep = label("models-staging", "kserve-s3-credentials", "strict")
    assert hybrid_decrypt(key, base64.b64decode(rendered[0]["spec"]["encryptedData"]["AWS_ACCESS_KEY_ID"]),
                          oaep) == b"reader"
    assert validate_all({"staging": project / "environments/staging"}, schema_dir=schema_dir) == []


def test_namespace_wide_scope(project: Path, keypair):
    key, cert = keypair
    _set_secrets(project, "main", "{method: sealed, scope: namespace-wide}")
    result = run_cli("secrets", "seal", "--env", "platform/main", "--name", "mlflow-backend", "--cert", str(cert),
                     "--from-literal", "backend-store-uri=postgresql://u:p@postgres:5432/mlflow", cwd=project)
    assert result.returncode == 0, result.stderr
    doc = yaml.safe_load((project / "environments/platform/main/sealed/mlflow-backend.yaml").read_text())
    assert doc["metadata"]["annotations"]["sealedsecrets.bitnami.com/namespace-wide"] == "true"
    value = base64.b64decode(doc["spec"]["encryptedData"]["backend-store-uri"])
    assert hybrid_decrypt(key, value, b"mlflow") == b"postgresql://u:p@postgres:5432/mlflow"


def test_seal_rejects_wrong_keys_and_methods(project: Path, keypair):
    _, cert = keypair
    pg = ("--name", "postgres-credentials", "--cert", str(cert),
          "--from-literal", "POSTGRES_USER=a", "--from-literal", "POSTGRES_PASSWORD=b")
    result = run_cli("secrets", "seal", "--env", "platform/main", *pg, cwd=project)
    assert result.returncode == 1 and "uses method 'external', not sealed" in result.stderr
    assert "platform.instances.main.secrets.method" in result.stderr
    # a serving environment runs no PostgreSQL: the platform's Secrets are not its to seal
    _set_secrets(project, "prod", "{method: sealed}")
    cfg, values = load_config(project / "gitops.yaml"), {"POSTGRES_USER": "a", "POSTGRES_PASSWORD": "b"}
    with pytest.raises(GitopsError, match=r"secret 'postgres-credentials' is not one prod uses \(known: none\)"):
        seal_into_project(cfg, "prod", "postgres-credentials", values, cert)
    with pytest.raises(GitopsError, match="no platform instance or environment 'qa'"):
        seal_into_project(cfg, "qa", "postgres-credentials", values, cert)
    _set_secrets(project, "main", "{method: sealed}")
    result = run_cli("secrets", "seal", "--env", "platform/main", "--name", "postgres-credentials", "--cert",
                     str(cert), "--from-literal", "POSTGRES_USR=a", cwd=project)
    assert result.returncode == 1
    assert "missing POSTGRES_USER, POSTGRES_PASSWORD; unexpected POSTGRES_USR" in result.stderr
    assert not (project / "environments/platform/main/sealed").exists()
    assert not (project / "environments/prod/sealed").exists()
    bad_cert = project / "bad.pem"
    bad_cert.write_text("not a cert")
    result = run_cli("secrets", "seal", "--env", "platform/main", "--name", "mlflow-backend", "--cert", str(bad_cert),
                     "--from-literal", "backend-store-uri=x", cwd=project)
    assert result.returncode == 1 and "bad.pem: not a PEM certificate" in result.stderr


def test_local_secrets_are_git_ignored_and_render(project: Path):
    """A dev platform instance and a dev serving environment on `local`: git-ignored values, applied by hand."""
    config = project / "gitops.yaml"
    config.write_text(config.read_text().replace("  instances:\n    main:\n", "  instances:\n    dev:\n"))
    from gitops_tool.project import generate

    generate(config, prune=True)  # renaming the instance drops platform/main: generate asks for --prune
    _storage_mode(project)
    config.write_text(config.read_text().replace(
        "secrets: {method: external, store: platform-secrets, remote_prefix: models/dev}", "secrets: {method: local}"))
    _set_secrets(project, "dev", "{method: local}")  # the first `dev:` is now the platform instance
    local = project / "environments/platform/dev/secrets-local"
    assert (local / ".gitignore").read_text().splitlines()[-1] == "*.env"
    assert (local / "postgres-credentials.env.example").read_text().endswith("POSTGRES_USER=\nPOSTGRES_PASSWORD=\n")
    subprocess.run(["git", "init", "-q"], cwd=project, check=True)
    (local / "postgres-credentials.env").write_text("POSTGRES_USER=mlflow\nPOSTGRES_PASSWORD=dev-only\n")
    ignored = subprocess.run(["git", "check-ignore", "environments/platform/dev/secrets-local/postgres-credentials.env"],
                             cwd=project, capture_output=True, text=True)
    assert ignored.returncode == 0
    for name in ("minio-credentials", "mlflow-backend", "mlflow-keys", "mlflow-basic-auth", "gitops-webhook",
                 "gitops-git-credentials"):
        keys = [line.split("=")[0] for line in (local / f"{name}.env.example").read_text().splitlines()
                if "=" in line and not line.startswith("#")]
        (local / f"{name}.env").write_text("".join(f"{k}=value\n" for k in keys))
    secrets = {d["metadata"]["name"]: d for d in render_docs(local)}
    assert secrets["postgres-credentials"]["metadata"]["namespace"] == "mlflow"
    assert base64.b64decode(secrets["postgres-credentials"]["data"]["POSTGRES_PASSWORD"]) == b"dev-only"
    # the serving dev environment's local kustomization holds only the KServe credentials, annotated
    serving = project / "environments/dev/secrets-local"
    assert sorted(p.name for p in serving.glob("*.env.example")) == ["kserve-s3-credentials.env.example"]
    (serving / "kserve-s3-credentials.env").write_text("AWS_ACCESS_KEY_ID=reader\nAWS_SECRET_ACCESS_KEY=dev-only\n")
    [s3] = render_docs(serving)
    assert s3["metadata"]["namespace"] == "models-dev"
    assert s3["metadata"]["annotations"]["serving.kserve.io/s3-endpoint"] == "minio.mlflow.svc.cluster.local:9000"
    # the Argo CD overlays never depend on those files
    for overlay in ("environments/platform/dev", "environments/dev"):
        assert not [d for d in render_docs(project / overlay) if d["kind"] in ("Secret", "ExternalSecret")]


@pytest.mark.parametrize("old, field", [
    ("secrets: {method: external, store: platform-secrets, remote_prefix: models/prod}", "environments.prod.secrets"),
    ("secrets: {method: external, store: platform-secrets, remote_prefix: mlflow/platform}",
     "platform.instances.main.secrets"),
])
def test_local_method_is_for_dev_only(project: Path, old: str, field: str):
    config = project / "gitops.yaml"
    text = config.read_text()
    assert old in text
    config.write_text(text.replace(old, "secrets: {method: local}"))
    line = next(i for i, row in enumerate(config.read_text().splitlines(), 1) if "secrets: {method: local}" in row)
    with pytest.raises(GitopsError, match=rf"gitops.yaml:{line} {field}: method 'local' .* for dev only"):
        load_config(config)


def test_apr1_matches_openssl():
    if not shutil.which("openssl"):
        pytest.skip("openssl not installed")
    expected = subprocess.run(["openssl", "passwd", "-apr1", "-salt", "x1Y2z3W4", "correct horse"],
                              capture_output=True, text=True, check=True).stdout.strip()
    assert apr1("correct horse", "x1Y2z3W4") == expected


@pytest.mark.parametrize("algorithm", ["apr1", "bcrypt", "sha"])
def test_htpasswd_entry_works_in_real_nginx(tmp_path: Path, algorithm: str):
    """sha is what Envoy Gateway's basicAuth takes (no Envoy runs here: nginx checks the same {SHA} format)."""
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    if not Path(nginx).exists():
        pytest.skip("nginx is not installed (the Debian package nginx; .ci/run installs it)")
    flags = {"apr1": [], "bcrypt": ["--bcrypt"], "sha": ["--sha"]}[algorithm]
    result = run_cli("secrets", "htpasswd", "alice", *flags, "--password", "wonder land")
    assert result.returncode == 0, result.stderr
    line = result.stdout.strip()
    assert line.startswith({"apr1": "alice:$apr1$", "bcrypt": "alice:$2y$", "sha": "alice:{SHA}"}[algorithm])
    (tmp_path / "htpasswd").write_text(line + "\n")
    (tmp_path / "www").mkdir()
    (tmp_path / "www/index.html").write_text("ok")
    port = free_port()
    # As root, nginx's workers drop to nobody, who cannot read pytest's private tmp dir.
    user = "user root root;" if os.geteuid() == 0 else ""
    (tmp_path / "nginx.conf").write_text(f"""
{user}
daemon off; pid {tmp_path}/nginx.pid; error_log {tmp_path}/error.log;
events {{}}
http {{
  access_log off; client_body_temp_path {tmp_path}; proxy_temp_path {tmp_path};
  fastcgi_temp_path {tmp_path}; uwsgi_temp_path {tmp_path}; scgi_temp_path {tmp_path};
  server {{
    listen 127.0.0.1:{port};
    # a static file, not `return`: return runs before the access phase and would skip auth
    location / {{ auth_basic "MLflow"; auth_basic_user_file {tmp_path}/htpasswd; root {tmp_path}/www; }}
  }}
}}
""")
    proc = subprocess.Popen([nginx, "-c", str(tmp_path / "nginx.conf"), "-p", str(tmp_path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}/"
        for _ in range(100):
            try:
                requests.get(url, timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        assert requests.get(url, timeout=5).status_code == 401
        assert requests.get(url, auth=("alice", "wrong"), timeout=5).status_code == 401
        assert requests.get(url, auth=("alice", "wonder land"), timeout=5).status_code == 200
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_repository_has_no_secret_material():
    hits = scan_tree(REPO_ROOT)
    assert [str(h) for h in hits] == []
