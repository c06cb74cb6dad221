"""Every required manifest property, checked on the real `kubectl kustomize` output."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from gitops_tool.project import init_project
from gitops_tool.validate import validate_all
from tests.conftest import find, render_docs, write_release

IMAGE = "registry.example.com/ml/wine-classifier@sha256:" + "b" * 64


@pytest.fixture(scope="module")
def platform(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("manifests") / "platform"
    init_project(root)
    write_release(root, "prod", "7", image=IMAGE)
    return root


@pytest.fixture(scope="module")
def rendered(platform: Path) -> dict[str, list[dict]]:
    return {env: render_docs(platform / "environments" / env) for env in ("dev", "staging", "prod")}


def _container(workload: dict, name: str) -> dict:
    spec = workload["spec"]["template"]["spec"]
    return next(c for c in spec["containers"] + spec.get("initContainers", []) if c["name"] == name)


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def test_postgres(rendered):
    docs = rendered["prod"]
    sts, svc = find(docs, "StatefulSet", "postgres"), find(docs, "Service", "postgres")
    assert svc["spec"]["clusterIP"] == "None" and sts["spec"]["serviceName"] == "postgres"
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "100Gi"
    pg = _container(sts, "postgres")
    for probe in ("readinessProbe", "livenessProbe"):
        assert "pg_isready" in " ".join(pg[probe]["exec"]["command"])
    assert pg["resources"]["requests"] and pg["resources"]["limits"]
    pod = sts["spec"]["template"]["spec"]["securityContext"]
    assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0
    env = _env(pg)
    assert env["POSTGRES_PASSWORD"]["valueFrom"]["secretKeyRef"]["name"] == "postgres-credentials"
    assert "value" not in env["POSTGRES_PASSWORD"]


def test_minio_and_bucket_job(rendered):
    docs = rendered["dev"]
    sts, svc = find(docs, "StatefulSet", "minio"), find(docs, "Service", "minio")
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {"api": 9000, "console": 9001}
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "10Gi"
    job = find(docs, "Job", "minio-create-bucket")
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "Sync"
    script = _container(job, "create-bucket")["command"][-1]
    assert "mc mb --ignore-existing platform/mlflow-artifacts" in script


def test_mlflow_server(rendered, platform):
    docs = rendered["prod"]
    deployment = find(docs, "Deployment", "mlflow")
    server = _container(deployment, "mlflow")
    args = server["args"]
    assert server["command"] == ["mlflow", "server"]
    assert args[args.index("--artifacts-destination") + 1] == "s3://mlflow-artifacts"
    assert "--expose-prometheus" in args and "--allowed-hosts" in args
    env = _env(server)
    assert env["MLFLOW_S3_ENDPOINT_URL"]["value"] == "http://minio:9000"
    assert env["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"]["name"] == "mlflow-backend"
    assert env["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "mlflow-keys"
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "flask-secret-key"
    assert env["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"]["value"] == "true"
    hosts = env["MLFLOW_SERVER_ALLOWED_HOSTS"]["value"].split(",")
    assert {"mlflow.example.com", "mlflow.mlflow-prod.svc.cluster.local:5000", "mlflow:5000"} <= set(hosts)
    upgrade = _container(deployment, "db-upgrade")
    assert upgrade["command"][:3] == ["mlflow", "db", "upgrade"]
    assert server["readinessProbe"]["httpGet"]["path"] == "/health"
    assert server["resources"]["limits"]["memory"] == "4Gi"
    svc = find(docs, "Service", "mlflow")
    assert svc["spec"]["ports"][0]["name"] == "http"
    assert find(docs, "PodDisruptionBudget", "mlflow")["spec"]["selector"]["matchLabels"] == \
        deployment["spec"]["selector"]["matchLabels"]
    hpa = find(docs, "HorizontalPodAutoscaler", "mlflow")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (3, 10)
    assert "replicas" not in deployment["spec"]  # the HPA owns it in prod
    assert find(rendered["staging"], "Deployment", "mlflow")["spec"]["replicas"] == 2
    assert not [d for d in rendered["staging"] if d["kind"] == "HorizontalPodAutoscaler"]
    assert "psycopg2" not in server["image"] and server["image"].endswith("-full")


def test_ingress(rendered, platform):
    prod = find(rendered["prod"], "Ingress", "mlflow")
    assert prod["spec"]["ingressClassName"] == "nginx"
    notes = prod["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/auth-type"] == "basic"
    assert notes["nginx.ingress.kubernetes.io/auth-secret"] == "mlflow-basic-auth"
    assert "nginx.ingress.kubernetes.io/auth-realm" in notes
    assert notes["nginx.ingress.kubernetes.io/proxy-body-size"] == "1024m"
    assert prod["spec"]["rules"][0]["host"] == "mlflow.example.com"
    assert prod["spec"]["tls"] == [{"hosts": ["mlflow.example.com"], "secretName": "mlflow-prod-tls"}]
    assert "tls" not in find(rendered["dev"], "Ingress", "mlflow")["spec"]


def test_basic_auth_off_removes_the_annotations(tmp_path):
    root = tmp_path / "p"
    init_project(root)
    config = root / "gitops.yaml"
    config.write_text(config.read_text().replace(
        "    tls: {enabled: false}\n    basic_auth: true", "    tls: {enabled: false}\n    basic_auth: false"))
    from gitops_tool.project import generate
    generate(config)
    notes = find(render_docs(root / "environments/dev"), "Ingress", "mlflow")["metadata"]["annotations"]
    assert not [k for k in notes if "auth-" in k]
    assert "nginx.ingress.kubernetes.io/proxy-body-size" in notes


def test_service_monitor_selects_the_mlflow_service(rendered):
    docs = rendered["dev"]
    monitor, svc = find(docs, "ServiceMonitor", "mlflow"), find(docs, "Service", "mlflow")
    labels = svc["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in monitor["spec"]["selector"]["matchLabels"].items())
    endpoint = monitor["spec"]["endpoints"][0]
    assert endpoint["port"] in [p["name"] for p in svc["spec"]["ports"]]
    assert (endpoint["path"], endpoint["interval"]) == ("/metrics", "30s")


def test_inference_service_image_mode(rendered):
    isvc = find(rendered["prod"], "InferenceService", "wine-classifier")
    assert isvc["apiVersion"] == "serving.kserve.io/v1beta1"
    assert isvc["spec"]["predictor"]["containers"][0]["image"] == IMAGE
    assert isvc["metadata"]["annotations"]["gitops-tool.io/model-version"] == "7"
    # not promoted to dev yet: nothing unpinned is deployed there
    assert not [d for d in rendered["dev"] if d["kind"] == "InferenceService"]


def test_inference_service_storage_mode(tmp_path, schema_dir):
    root = tmp_path / "p"
    init_project(root)
    config = root / "gitops.yaml"
    config.write_text(config.read_text().replace("    mode: image\n", "    mode: storage\n"))
    from gitops_tool.project import generate
    generate(config)
    write_release(root, "dev", "3", storage_uri="s3://mlflow-artifacts/1/models/m-abc/artifacts")
    isvc = find(render_docs(root / "environments/dev"), "InferenceService", "wine-classifier")
    model = isvc["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "mlflow"} and model["protocolVersion"] == "v2"
    assert model["storageUri"] == "s3://mlflow-artifacts/1/models/m-abc/artifacts"
    findings = validate_all({"dev": root / "environments/dev"}, schema_dir=schema_dir)
    assert [str(f) for f in findings] == []


def test_network_policies(rendered):
    docs = rendered["dev"]
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    mlflow_from = policies["mlflow-from-ingress"]["ingress"][0]["from"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}} in mlflow_from
    pg_from = policies["postgres-from-mlflow"]["ingress"][0]["from"]
    assert pg_from == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "mlflow"}}}]
    minio_from = [f["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                  for f in policies["minio-from-clients"]["ingress"][0]["from"]]
    assert minio_from == ["mlflow", "minio-create-bucket"]


def test_no_secret_values_anywhere(platform, rendered):
    for docs in rendered.values():
        assert not [d for d in docs if d["kind"] == "Secret"]
    for path in platform.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            assert not (isinstance(doc, dict) and doc.get("kind") == "Secret"), path


def test_overlays_differ_only_where_configured(rendered):
    for env, docs in rendered.items():
        assert {d["metadata"].get("namespace") for d in docs} == {f"mlflow-{env}"}
    assert find(rendered["dev"], "Deployment", "mlflow")["spec"]["replicas"] == 1


def test_sync_waves_order_data_before_mlflow_before_serving(rendered):
    def wave(kind, name):
        return int(find(rendered["prod"], kind, name)["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
    assert wave("StatefulSet", "postgres") < wave("Job", "minio-create-bucket") < wave("Deployment", "mlflow")
    assert wave("StatefulSet", "minio") < wave("Deployment", "mlflow") < wave("InferenceService", "wine-classifier")


def test_argocd(platform, schema_dir):
    docs = render_docs(platform / "argocd")
    project = find(docs, "AppProject", "mlflow-platform")
    assert project["spec"]["sourceRepos"] == ["https://github.com/example-org/mlflow-gitops.git"]
    assert sorted(d["namespace"] for d in project["spec"]["destinations"]) == \
        ["mlflow-dev", "mlflow-prod", "mlflow-staging"]
    apps = [d for d in docs if d["kind"] == "Application"]
    assert len(apps) == 3
    for app in apps:
        sync = app["spec"]["syncPolicy"]
        assert sync["automated"] == {"prune": True, "selfHeal": True}
        assert "CreateNamespace=true" in sync["syncOptions"]
        assert sync["retry"]["backoff"]["factor"] == 2
        assert app["spec"]["source"]["path"] == f"environments/{app['metadata']['labels']['gitops-tool.io/environment']}"


def test_rendered_platform_validates_against_crd_schemas(platform, schema_dir):
    dirs = {env: platform / "environments" / env for env in ("dev", "staging", "prod")}
    dirs["argocd"] = platform / "argocd"
    findings = validate_all(dirs, schema_dir=schema_dir)
    assert [str(f) for f in findings] == []
