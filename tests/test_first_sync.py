"""What would fail at the first Argo CD sync, checked on the real `kubectl kustomize` output.

Each test here failed before the fix it names (issue 11, "Why"). The MLflow host and CORS checks
run MLflow 3.17's own security functions (mlflow.server.security_utils) on the rendered values.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gitops_tool.errors import GitopsError
from gitops_tool.project import init_project
from tests.conftest import find, render_docs
from tests.platform_fixtures import edit_config as _edit, generate as _generate, storage_project


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The starter, plus a storage-mode model promoted to dev, whose Secrets are local (dev only)."""
    return storage_project(tmp_path_factory.mktemp("first-sync") / "platform")


@pytest.fixture(scope="module")
def platform_docs(project: Path) -> list[dict]:
    return render_docs(project / "environments/platform/main")


@pytest.fixture(scope="module")
def dev_docs(project: Path) -> list[dict]:
    return render_docs(project / "environments/dev")


def _env(docs: list[dict]) -> dict[str, str]:
    container = find(docs, "Deployment", "mlflow")["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value") for e in container["env"]}


def test_job_execution_is_off_by_default(platform_docs):
    assert _env(platform_docs)["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"


def test_job_execution_on_needs_a_limit_that_fits_the_measured_need(tmp_path: Path):
    from gitops_tool.config import load_config

    root = tmp_path / "p"
    init_project(root)
    _edit(root, "    job_execution: false\n", "    job_execution: true\n")
    _edit(root, 'limits: {cpu: "2", memory: 3Gi}', 'limits: {cpu: "2", memory: 1Gi}')
    with pytest.raises(GitopsError, match=r"platform\.instances\.main\.resources: limits\.memory 1Gi is below "
                                          r"what MLflow needs at 2 workers with job execution on"):
        load_config(root / "gitops.yaml")
    _edit(root, "    job_execution: true\n", "    job_execution: false\n")
    _edit(root, 'memory: 1Gi}', 'memory: 512Mi}')
    with pytest.raises(GitopsError, match="job execution off"):
        load_config(root / "gitops.yaml")


def test_browser_writes_through_the_ingress_pass_cors(platform_docs):
    from mlflow.server.security_utils import should_block_cors_request

    deployment = find(platform_docs, "Deployment", "mlflow")
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--cors-allowed-origins") + 1] == "$(MLFLOW_SERVER_CORS_ALLOWED_ORIGINS)"
    origins = _env(platform_docs)["MLFLOW_SERVER_CORS_ALLOWED_ORIGINS"].split(",")
    assert not should_block_cors_request("https://mlflow.example.com", "POST", origins)
    assert should_block_cors_request("https://evil.example.net", "POST", origins)


def test_allowed_hosts_keep_port_forward_cgnat_and_ipv6(platform_docs):
    from mlflow.server.security_utils import is_allowed_host_header

    hosts = _env(platform_docs)["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    for host in ("localhost:5000", "127.0.0.1:5000", "100.64.3.4:5000", "100.127.0.9:5000", "[fd00::5]:5000",
                 "10.1.2.3:5000", "mlflow.example.com", "mlflow.mlflow.svc.cluster.local:5000"):
        assert is_allowed_host_header(hosts, host), host
    for host in ("evil.example.net", "100.128.0.1:5000", "mlflow.example.com.evil.net"):
        assert not is_allowed_host_header(hosts, host), host


def test_extra_hosts_and_origins_come_from_the_config(tmp_path: Path):
    root = tmp_path / "p"
    init_project(root)
    _edit(root, "    job_execution: false\n", "    job_execution: false\n    extra_allowed_hosts: [mlflow.internal]\n"
          "    cors_allowed_origins: ['https://notebooks.example.com']\n")
    _generate(root)
    env = _env(render_docs(root / "environments/platform/main"))
    assert "mlflow.internal" in env["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert env["MLFLOW_SERVER_CORS_ALLOWED_ORIGINS"].split(",") == [
        "https://mlflow.example.com", "https://notebooks.example.com"]


def test_one_migration_job_between_postgres_and_mlflow(platform_docs):
    deployment = find(platform_docs, "Deployment", "mlflow")
    assert "initContainers" not in deployment["spec"]["template"]["spec"]
    jobs = [d for d in platform_docs if d["kind"] == "Job" and "upgrade" in str(d["spec"]["template"])]
    assert [j["metadata"]["name"] for j in jobs] == ["mlflow-db-upgrade"]
    notes = jobs[0]["metadata"]["annotations"]
    wave = int(notes["argocd.argoproj.io/sync-wave"])
    postgres = int(find(platform_docs, "StatefulSet", "postgres")["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
    mlflow = int(deployment["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
    assert postgres < wave < mlflow and notes["argocd.argoproj.io/hook"] == "Sync"


def test_storage_mode_wires_the_s3_endpoint(dev_docs):
    account = find(dev_docs, "ServiceAccount", "wine-storage-storage")
    notes = account["metadata"]["annotations"]
    assert notes["serving.kserve.io/s3-endpoint"] == "minio.mlflow.svc.cluster.local:9000"
    assert notes["serving.kserve.io/s3-usehttps"] == "0" and notes["serving.kserve.io/s3-region"] == "us-east-1"


def test_first_sync_has_namespaces_and_skips_dry_run_on_crd_kinds(platform_docs, dev_docs):
    for docs, ns in ((platform_docs, "mlflow"), (dev_docs, "models-dev")):
        namespace = find(docs, "Namespace", ns)
        assert int(namespace["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"]) < -1
    crd_kinds = {"ServiceMonitor", "PrometheusRule", "PodMonitor", "ExternalSecret", "InferenceService"}
    seen = set()
    for doc in platform_docs + dev_docs:
        if doc["kind"] in crd_kinds:
            seen.add(doc["kind"])
            options = doc["metadata"]["annotations"]["argocd.argoproj.io/sync-options"].split(",")
            assert "SkipDryRunOnMissingResource=true" in options, doc["metadata"]["name"]
    assert seen == crd_kinds


def test_local_secrets_missing_fail_the_sync_naming_them(dev_docs):
    job = find(dev_docs, "Job", "local-secrets-check")
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "PreSync"
    spec = job["spec"]["template"]["spec"]
    assert {v["secret"]["secretName"]: v["secret"]["optional"] for v in spec["volumes"] if "secret" in v} == {
        "kserve-s3-credentials": True}
    script = spec["containers"][0]["command"][-1]
    assert "kubectl apply -k environments/dev/secrets-local" in script and "kserve-s3-credentials" in script


def test_local_secrets_check_script_names_what_is_missing(dev_docs, tmp_path: Path):
    """The Job's own script, run by sh against a directory standing in for the Secret mounts."""
    import subprocess

    script = find(dev_docs, "Job", "local-secrets-check")["spec"]["template"]["spec"]["containers"][0]["command"][-1]
    local = script.replace("/secrets/", f"{tmp_path}/secrets/").replace("/dev/termination-log", f"{tmp_path}/log")
    missing = subprocess.run(["sh", "-c", local], capture_output=True, text=True)
    assert missing.returncode == 1 and "missing in namespace models-dev: kserve-s3-credentials" in missing.stderr
    (tmp_path / "secrets/kserve-s3-credentials").mkdir(parents=True)
    (tmp_path / "secrets/kserve-s3-credentials/AWS_ACCESS_KEY_ID").write_text("x")
    assert subprocess.run(["sh", "-c", local], capture_output=True).returncode == 0


def test_monitoring_objects_carry_the_prometheus_selector(platform_docs, dev_docs, tmp_path: Path):
    kinds = {"ServiceMonitor", "PrometheusRule", "PodMonitor"}
    monitors = [d for d in platform_docs + dev_docs if d["kind"] in kinds]
    assert {d["kind"] for d in monitors} == kinds
    assert all(d["metadata"]["labels"]["release"] == "kube-prometheus-stack" for d in monitors)
    root = tmp_path / "p"
    init_project(root)
    _edit(root, "prometheus_selector: {release: kube-prometheus-stack}", "prometheus_selector: {prometheus: main}")
    _generate(root)
    rule = find(render_docs(root / "environments/platform/main"), "PrometheusRule", "gitops-tool")
    assert rule["metadata"]["labels"]["prometheus"] == "main" and "release" not in rule["metadata"]["labels"]


def test_tls_is_issued_by_cert_manager(platform_docs, tmp_path: Path):
    from gitops_tool.config import load_config

    ingress = find(platform_docs, "Ingress", "mlflow")
    assert ingress["metadata"]["annotations"]["cert-manager.io/cluster-issuer"] == "letsencrypt-prod"
    root = tmp_path / "p"
    init_project(root)
    _edit(root, ", cluster_issuer: letsencrypt-prod}", ", issuer: team-ca}")
    _generate(root)
    notes = find(render_docs(root / "environments/platform/main"), "Ingress", "mlflow")["metadata"]["annotations"]
    assert notes["cert-manager.io/issuer"] == "team-ca" and "cert-manager.io/cluster-issuer" not in notes
    _edit(root, ", issuer: team-ca}", "}")
    with pytest.raises(GitopsError, match=r"platform\.instances\.main\.tls: TLS is on but nothing issues Secret "
                                          r"'mlflow-tls'"):
        load_config(root / "gitops.yaml")


def test_network_config_reaches_the_policies(tmp_path: Path):
    root = tmp_path / "p"
    init_project(root)
    _edit(root, "ingress_namespace: ingress-nginx\n  ingress_pod_labels: {app.kubernetes.io/name: ingress-nginx}",
          "ingress_namespace: traefik\n  ingress_pod_labels: {app.kubernetes.io/name: traefik}")
    _generate(root)
    docs = render_docs(root / "environments/platform/main")
    sources = find(docs, "NetworkPolicy", "mlflow-from-clients")["spec"]["ingress"][0]["from"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "traefik"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "traefik"}}} in sources
    assert "ingress-nginx" not in yaml.safe_dump(sources)
