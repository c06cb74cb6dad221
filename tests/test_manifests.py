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


OVERLAYS = {"platform": "platform/main", "dev": "dev", "staging": "staging", "prod": "prod"}


@pytest.fixture(scope="module")
def rendered(platform: Path) -> dict[str, list[dict]]:
    """Every overlay Argo CD syncs: the platform instance and the three serving environments."""
    return {key: render_docs(platform / "environments" / rel) for key, rel in OVERLAYS.items()}


def _container(workload: dict, name: str) -> dict:
    spec = workload["spec"]["template"]["spec"]
    return next(c for c in spec["containers"] + spec.get("initContainers", []) if c["name"] == name)


def _env(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container.get("env", [])}


def test_postgres(rendered):
    docs = rendered["platform"]
    sts, svc = find(docs, "StatefulSet", "postgres"), find(docs, "Service", "postgres")
    assert svc["spec"]["clusterIP"] == "None" and sts["spec"]["serviceName"] == "postgres"
    claim = sts["spec"]["volumeClaimTemplates"][0]
    assert claim["spec"]["resources"]["requests"]["storage"] == "50Gi"
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
    docs = rendered["platform"]
    sts, svc = find(docs, "StatefulSet", "minio"), find(docs, "Service", "minio")
    assert {p["name"]: p["port"] for p in svc["spec"]["ports"]} == {"api": 9000, "console": 9001}
    assert sts["spec"]["volumeClaimTemplates"][0]["spec"]["resources"]["requests"]["storage"] == "200Gi"
    job = find(docs, "Job", "minio-create-bucket")
    assert job["metadata"]["annotations"]["argocd.argoproj.io/hook"] == "Sync"
    creator = _container(job, "create-bucket")
    assert 'mc mb --ignore-existing "platform/$BUCKET"' in creator["command"][-1]
    assert _env(creator)["BUCKET"]["value"] == "mlflow-artifacts"


def test_mlflow_server(rendered, platform):
    docs = rendered["platform"]
    deployment = find(docs, "Deployment", "mlflow")
    server = _container(deployment, "mlflow")
    args = server["args"]
    assert server["command"] == ["mlflow", "server"]
    env = _env(server)
    # Per-instance values reach the args through the container env (Kubernetes expands $(VAR)).
    assert args[args.index("--artifacts-destination") + 1] == "$(MLFLOW_ARTIFACTS_DESTINATION)"
    assert env["MLFLOW_ARTIFACTS_DESTINATION"]["value"] == "s3://mlflow-artifacts"
    assert args[args.index("--workers") + 1] == "$(MLFLOW_SERVER_WORKERS)" and env["MLFLOW_SERVER_WORKERS"]["value"] == "2"
    assert "--expose-prometheus" in args and "--allowed-hosts" in args
    assert env["MLFLOW_S3_ENDPOINT_URL"]["value"] == "http://minio.mlflow.svc.cluster.local:9000"
    assert env["AWS_ACCESS_KEY_ID"]["valueFrom"]["secretKeyRef"] == {"name": "minio-credentials", "key": "MINIO_ROOT_USER"}
    assert env["MLFLOW_BACKEND_STORE_URI"]["valueFrom"]["secretKeyRef"]["name"] == "mlflow-backend"
    assert env["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"]["valueFrom"]["secretKeyRef"]["name"] == "mlflow-keys"
    assert env["MLFLOW_FLASK_SERVER_SECRET_KEY"]["valueFrom"]["secretKeyRef"]["key"] == "flask-secret-key"
    assert env["MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS"]["value"] == "true"
    hosts = env["MLFLOW_SERVER_ALLOWED_HOSTS"]["value"].split(",")
    assert {"mlflow.example.com", "mlflow.mlflow.svc.cluster.local:5000", "mlflow:5000"} <= set(hosts)
    assert "initContainers" not in deployment["spec"]["template"]["spec"]  # one migration Job instead
    upgrade = _container(find(docs, "Job", "mlflow-db-upgrade"), "db-upgrade")
    assert upgrade["command"][:3] == ["mlflow", "db", "upgrade"]
    assert server["readinessProbe"]["httpGet"]["path"] == "/health"
    assert server["resources"]["limits"]["memory"] == "3Gi"
    svc = find(docs, "Service", "mlflow")
    assert svc["spec"]["ports"][0]["name"] == "http"
    assert find(docs, "PodDisruptionBudget", "mlflow")["spec"]["selector"]["matchLabels"] == \
        deployment["spec"]["selector"]["matchLabels"]
    hpa = find(docs, "HorizontalPodAutoscaler", "mlflow")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 6)
    assert "replicas" not in deployment["spec"]  # the HPA owns it
    assert "psycopg2" not in server["image"] and server["image"].endswith("-full")


def test_ingress(rendered, platform):
    prod = find(rendered["platform"], "Ingress", "mlflow")
    assert prod["spec"]["ingressClassName"] == "nginx"
    notes = prod["metadata"]["annotations"]
    assert notes["nginx.ingress.kubernetes.io/auth-type"] == "basic"
    assert notes["nginx.ingress.kubernetes.io/auth-secret"] == "mlflow-basic-auth"
    assert "nginx.ingress.kubernetes.io/auth-realm" in notes
    assert notes["nginx.ingress.kubernetes.io/proxy-body-size"] == "1024m"
    assert prod["spec"]["rules"][0]["host"] == "mlflow.example.com"
    assert prod["spec"]["tls"] == [{"hosts": ["mlflow.example.com"], "secretName": "mlflow-tls"}]


def test_basic_auth_off_removes_the_annotations(tmp_path):
    root = tmp_path / "p"
    init_project(root)
    config = root / "gitops.yaml"
    text = config.read_text()
    config.write_text(text.replace("      basic_auth: true\n", "      basic_auth: false\n"))
    assert config.read_text() != text
    from gitops_tool.project import generate
    generate(config)
    notes = find(render_docs(root / "environments/platform/main"), "Ingress", "mlflow")["metadata"]["annotations"]
    assert not [k for k in notes if "auth-" in k]
    assert "nginx.ingress.kubernetes.io/proxy-body-size" in notes


def test_service_monitor_selects_the_mlflow_service(rendered):
    docs = rendered["platform"]
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
    # prod's serving policy: Serverless, 2..10 replicas, its own predictor resources
    assert isvc["metadata"]["annotations"]["serving.kserve.io/deploymentMode"] == "Serverless"
    predictor = isvc["spec"]["predictor"]
    assert (predictor["minReplicas"], predictor["maxReplicas"]) == (2, 10)
    assert predictor["containers"][0]["resources"]["limits"] == {"cpu": "2", "memory": "2Gi"}
    assert predictor["containers"][0]["readinessProbe"]["httpGet"]["path"] == "/ping"  # the JSON patch kept the rest
    # not promoted to dev yet: nothing unpinned is deployed there
    assert not [d for d in rendered["dev"] if d["kind"] == "InferenceService"]


def test_inference_service_storage_mode(tmp_path, schema_dir):
    root = tmp_path / "p"
    init_project(root)
    config = root / "gitops.yaml"
    text = config.read_text().replace("    mode: image\n", "    mode: storage\n")
    config.write_text(text.replace("    cluster: prod\n", "    cluster: in-cluster\n"))
    from gitops_tool.project import generate
    generate(config)
    write_release(root, "dev", "3", storage_uri="s3://mlflow-artifacts/1/models/m-abc/artifacts")
    isvc = find(render_docs(root / "environments/dev"), "InferenceService", "wine-classifier")
    model = isvc["spec"]["predictor"]["model"]
    assert model["modelFormat"] == {"name": "mlflow"} and model["protocolVersion"] == "v2"
    assert model["storageUri"] == "s3://mlflow-artifacts/1/models/m-abc/artifacts"
    assert model["resources"]["limits"] == {"cpu": "1", "memory": "1Gi"}  # dev's serving.resources default
    assert isvc["spec"]["predictor"]["serviceAccountName"] == "wine-classifier-storage"
    # The storage-initializer reaches the registry's MinIO in the platform namespace.
    store = find(render_docs(root / "environments/dev"), "ExternalSecret", "kserve-s3-credentials")
    notes = store["spec"]["target"]["template"]["metadata"]["annotations"]
    assert notes["serving.kserve.io/s3-endpoint"] == "minio.mlflow.svc.cluster.local:9000"
    assert notes["serving.kserve.io/s3-usehttps"] == "0"
    minio_from = find(render_docs(root / "environments/platform/main"), "NetworkPolicy", "minio-from-clients")
    namespaces = [f["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
                  for f in minio_from["spec"]["ingress"][0]["from"] if "namespaceSelector" in f]
    assert namespaces == ["models-dev", "models-prod", "models-staging"]
    findings = validate_all({"dev": root / "environments/dev"}, schema_dir=schema_dir)
    assert [str(f) for f in findings] == []


def test_network_policies(rendered):
    docs = rendered["platform"]
    policies = {d["metadata"]["name"]: d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}
    assert policies["default-deny-ingress"] == {"podSelector": {}, "policyTypes": ["Ingress"]}
    mlflow_from = policies["mlflow-from-clients"]["ingress"][0]["from"]
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}},
            "podSelector": {"matchLabels": {"app.kubernetes.io/name": "ingress-nginx"}}} in mlflow_from
    # The receiver and its register Job live next to MLflow and call it.
    assert {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "gitops-webhook"}}} in mlflow_from
    pg_from = policies["postgres-from-mlflow"]["ingress"][0]["from"]
    assert pg_from == [{"podSelector": {"matchLabels": {"app.kubernetes.io/name": "mlflow"}}},
                       {"podSelector": {"matchLabels": {"app.kubernetes.io/name": "mlflow-db-upgrade"}}}]
    minio_from = [f["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
                  for f in policies["minio-from-clients"]["ingress"][0]["from"]]
    assert minio_from == ["mlflow", "minio-create-bucket"]
    serving = {d["metadata"]["name"] for d in rendered["prod"] if d["kind"] == "NetworkPolicy"}
    assert serving == {"default-deny-ingress", "serving-from-ingress", "serving-from-knative"}  # prod is Serverless


def test_no_secret_values_anywhere(platform, rendered):
    for docs in rendered.values():
        assert not [d for d in docs if d["kind"] == "Secret"]
    for path in platform.rglob("*.yaml"):
        for doc in yaml.safe_load_all(path.read_text()):
            assert not (isinstance(doc, dict) and doc.get("kind") == "Secret"), path


def test_each_overlay_lives_in_its_own_namespace(rendered):
    expected = {"platform": "mlflow", "dev": "models-dev", "staging": "models-staging", "prod": "models-prod"}
    for key, docs in rendered.items():
        assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {expected[key]}
        assert [d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"] == [expected[key]]


def test_one_receiver_next_to_the_registry_and_models_only_in_serving(platform, rendered):
    """Done-when of the topology: exactly one receiver, pointing at the registry-of-record MLflow,
    and InferenceServices only in serving environments, never in an Application that runs MLflow."""
    argocd = render_docs(platform / "argocd")
    apps = {a["metadata"]["name"]: a["spec"]["source"]["path"] for a in argocd if a["kind"] == "Application"}
    receivers, serving_apps = [], []
    for name, path in apps.items():
        docs = render_docs(platform / path)
        kinds = {d["kind"] for d in docs}
        receivers += [(name, d) for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "gitops-webhook"]
        if "InferenceService" in kinds:
            serving_apps.append(name)
            assert not [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")], name
    assert len(receivers) == 1
    app, deployment = receivers[0]
    assert app == "mlflow-platform-platform-main"
    env = _env(_container(deployment, "receiver"))
    assert env["MLFLOW_TRACKING_URI"]["value"] == "http://mlflow:5000"  # the MLflow in its own namespace
    assert serving_apps == ["mlflow-platform-prod"]  # the only environment promoted so far


def test_second_platform_instance_has_no_receiver(tmp_path):
    root = tmp_path / "p"
    init_project(root)
    config = root / "gitops.yaml"
    config.write_text(config.read_text().replace("# Serving environments", (
        "    upgrade-test:\n      namespace: mlflow-next\n      host: mlflow-next.example.com\n"
        "      workers: 1\n      object_store: {kind: external, endpoint: https://s3.example.com, "
        "credentials_secret: s3-next, bucket: mlflow-next}\n\n# Serving environments")))
    from gitops_tool.project import generate
    generate(config)
    docs = render_docs(root / "environments/platform/upgrade-test")
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("Deployment", "mlflow") in names and ("StatefulSet", "postgres") in names
    assert not {n for n in names if "gitops-webhook" in n[1] or n[1] == "minio"}
    env = _env(_container(find(docs, "Deployment", "mlflow"), "mlflow"))
    assert env["MLFLOW_S3_ENDPOINT_URL"]["value"] == "https://s3.example.com"
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "s3-next", "key": "AWS_SECRET_ACCESS_KEY"}
    assert env["MLFLOW_ARTIFACTS_DESTINATION"]["value"] == "s3://mlflow-next"
    assert env["MLFLOW_SERVER_WORKERS"]["value"] == "1"
    secrets = {d["metadata"]["name"] for d in docs if d["kind"] == "ExternalSecret"}
    assert "s3-next" in secrets and "gitops-webhook" not in secrets and "minio-credentials" not in secrets


def test_sync_waves_order_data_before_mlflow(rendered):
    def wave(kind, name, key="platform"):
        return int(find(rendered[key], kind, name)["metadata"]["annotations"]["argocd.argoproj.io/sync-wave"])
    assert wave("StatefulSet", "postgres") < wave("Job", "minio-create-bucket") < wave("Deployment", "mlflow")
    assert wave("StatefulSet", "minio") < wave("Deployment", "mlflow") < wave("Deployment", "gitops-webhook")
    assert wave("NetworkPolicy", "default-deny-ingress", "prod") < wave("InferenceService", "wine-classifier", "prod")


def test_argocd_platform_on_one_cluster_prod_on_another(platform, schema_dir):
    """The starter puts the platform, dev and staging in-cluster and prod on the `prod` cluster."""
    docs = render_docs(platform / "argocd")
    project = find(docs, "AppProject", "mlflow-platform")
    assert project["spec"]["sourceRepos"] == ["https://github.com/example-org/mlflow-gitops.git"]
    local, remote = "https://kubernetes.default.svc", "https://prod.k8s.example.com"
    assert project["spec"]["destinations"] == [
        {"server": local, "namespace": "mlflow"}, {"server": local, "namespace": "models-dev"},
        {"server": local, "namespace": "models-staging"}, {"server": remote, "namespace": "models-prod"}]
    apps = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Application"}
    expected = {"mlflow-platform-platform-main": ("environments/platform/main", local, "mlflow"),
                "mlflow-platform-dev": ("environments/dev", local, "models-dev"),
                "mlflow-platform-staging": ("environments/staging", local, "models-staging"),
                "mlflow-platform-prod": ("environments/prod", remote, "models-prod")}
    assert {n: (a["spec"]["source"]["path"], a["spec"]["destination"]["server"], a["spec"]["destination"]["namespace"])
            for n, a in apps.items()} == expected
    allowed = [(d["server"], d["namespace"]) for d in project["spec"]["destinations"]]
    for app in apps.values():
        assert (app["spec"]["destination"]["server"], app["spec"]["destination"]["namespace"]) in allowed
        sync = app["spec"]["syncPolicy"]
        assert sync["automated"] == {"prune": True, "selfHeal": True}
        assert "CreateNamespace=true" in sync["syncOptions"]
        assert sync["retry"]["backoff"]["factor"] == 2
    assert apps["mlflow-platform-prod"]["metadata"]["labels"]["gitops-tool.io/cluster"] == "prod"


def test_rendered_platform_validates_against_crd_schemas(platform, schema_dir):
    dirs = {env: platform / "environments" / rel for env, rel in OVERLAYS.items()}
    dirs["argocd"] = platform / "argocd"
    findings = validate_all(dirs, schema_dir=schema_dir)
    assert [str(f) for f in findings] == []
