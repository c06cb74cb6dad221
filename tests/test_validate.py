"""Each validate check against hand-written manifests, with the real schemas."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from gitops_tool.validate import (
    K8S_VERSION,
    UNCHECKED,
    Finding,
    scan_text,
    scan_tree,
    validate_all,
    validate_environment,
)

SCHEMAS = Path(__file__).resolve().parents[2] / "shared" / "schemas"
FINDING_RE = re.compile(r"^[^:\s]+: [A-Za-z<>-]+/[^:\s]+: \S[^:]*: .+$", re.S)

DEPLOYMENT = """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: mlflow
  namespace: mlflow
spec:
  replicas: 1
  selector:
    matchLabels: {app: mlflow}
  template:
    metadata:
      labels: {app: mlflow}
    spec:
      containers:
        - name: mlflow
          image: ghcr.io/mlflow/mlflow:v3.17.2
          ports: [{containerPort: 5000, name: http}]
          env:
            - name: MLFLOW_TRACKING_PASSWORD  # a password comes from a Secret
              valueFrom:
                secretKeyRef: {name: mlflow-password, key: password}
          resources:
            requests: {cpu: 100m, memory: 256Mi}
            limits: {cpu: "1", memory: 1Gi}
          readinessProbe:
            httpGet: {path: /health, port: http}
          livenessProbe:
            httpGet: {path: /health, port: http}
"""

ISVC_IMAGE = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: wine
spec:
  predictor:
    containers:
      - name: kserve-container
        image: registry.example.com/wine-classifier:v3
        resources:
          requests: {cpu: 100m, memory: 256Mi}
          limits: {cpu: "1", memory: 1Gi}
"""

ISVC_STORAGE = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: wine
spec:
  predictor:
    model:
      modelFormat: {name: mlflow}
      protocolVersion: v2
      storageUri: STORAGE
      resources:
        requests: {cpu: 100m, memory: 256Mi}
        limits: {cpu: "1", memory: 1Gi}
"""

APPLICATION = """\
apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: mlflow-dev
  namespace: argocd
spec:
  project: mlflow
  source:
    repoURL: https://github.com/example/platform.git
    targetRevision: main
    path: environments/dev
  destination:
    server: https://kubernetes.default.svc
    namespace: mlflow-dev
  syncPolicy:
    automated: {prune: true, selfHeal: true}
"""


def check(text: str, schema_dir: Path | None = SCHEMAS, env: str = "dev") -> list[Finding]:
    findings = validate_environment(env, text, schema_dir=schema_dir, k8s_version=K8S_VERSION)
    for finding in findings:
        assert FINDING_RE.match(str(finding)), str(finding)
        assert str(finding) == f"{finding.env}: {finding.kind}/{finding.name}: {finding.path}: {finding.message}"
    return findings


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]


def paths(findings: list[Finding]) -> set[str]:
    return {f.path for f in findings}


@pytest.fixture
def schemas() -> Path:
    if not SCHEMAS.is_dir():
        pytest.skip(f"CRD schemas not found at {SCHEMAS} (../shared/schemas beside the repo)")
    return SCHEMAS


# --- Kubernetes schemas, strict ---------------------------------------------------------


def test_valid_deployment_passes() -> None:
    assert check(DEPLOYMENT) == []


def test_unknown_field_is_an_error_with_a_path() -> None:
    (finding,) = check(DEPLOYMENT.replace("  replicas: 1", "  replicaz: 1"))
    assert (finding.kind, finding.name, finding.path) == ("Deployment", "mlflow", "spec")
    assert "'replicaz' was unexpected" in finding.message
    assert str(finding).startswith("dev: Deployment/mlflow: spec: Additional properties")


def test_wrong_type_is_an_error() -> None:
    (finding,) = check(DEPLOYMENT.replace("containerPort: 5000", "containerPort: five-thousand"))
    assert finding.path == "spec.template.spec.containers[0].ports[0].containerPort"
    assert "is not of type 'integer'" in finding.message


def test_agrees_with_kubernetes_validate_itself() -> None:
    import kubernetes_validate
    import yaml

    for text, ok in [(DEPLOYMENT, True), (DEPLOYMENT.replace("replicas: 1", "replicas: one"), False)]:
        doc = yaml.safe_load(text)
        try:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)
            library_ok = True
        except kubernetes_validate.ValidationError:
            library_ok = False
        assert library_ok is ok
        assert (errors(check(text)) == []) is ok


def test_pinned_version_is_supported_and_others_fail_clearly() -> None:
    from gitops_tool.errors import GitopsError
    from gitops_tool.validate.kube_schemas import supported_versions

    assert K8S_VERSION in supported_versions()
    with pytest.raises(GitopsError, match="not supported by the installed kubernetes-validate"):
        validate_environment("dev", DEPLOYMENT, schema_dir=None, k8s_version="1.99.0")


def test_crd_lookalike_of_a_builtin_kind_is_not_validated_as_builtin() -> None:
    text = "apiVersion: apps.example.com/v1\nkind: Deployment\nmetadata: {name: x}\nspec: {anything: 1}\n"
    (finding,) = check(text, None)
    assert finding.severity == UNCHECKED


def test_removed_builtin_api_is_an_error() -> None:
    text = "apiVersion: extensions/v1beta1\nkind: Ingress\nmetadata: {name: old}\nspec: {}\n"
    (finding,) = check(text)
    assert finding.severity == "error" and "not served by Kubernetes" in finding.message


# --- Project rules -----------------------------------------------------------------------


def test_secret_with_string_data_is_flagged() -> None:
    text = "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\nstringData: {password: hunter2}\n"
    (finding,) = check(text)
    assert (finding.kind, finding.name, finding.path) == ("Secret", "db", "stringData")
    data = "apiVersion: v1\nkind: Secret\nmetadata: {name: db}\ndata: {password: aHVudGVyMg==}\n"
    assert paths(check(data)) == {"data"}


def test_missing_probes_and_resources_are_flagged() -> None:
    text = DEPLOYMENT.split("          resources:")[0]
    found = {(f.path, f.message) for f in check(text)}
    base = "spec.template.spec.containers[0]"
    assert found == {
        (f"{base}.resources.requests", "container 'mlflow' has no resources.requests"),
        (f"{base}.resources.limits", "container 'mlflow' has no resources.limits"),
        (f"{base}.readinessProbe", "container 'mlflow' has no readinessProbe"),
        (f"{base}.livenessProbe", "container 'mlflow' has no livenessProbe"),
    }


def test_jobs_and_init_containers_need_resources_only() -> None:
    job = """\
apiVersion: batch/v1
kind: Job
metadata: {name: make-bucket}
spec:
  template:
    spec:
      restartPolicy: OnFailure
      initContainers:
        - {name: wait, image: "busybox:1.36"}
      containers:
        - name: mc
          image: minio/mc:RELEASE.2025-01-01T00-00-00Z
          resources: {requests: {cpu: 10m}, limits: {cpu: 100m}}
"""
    found = check(job)
    assert paths(found) == {
        "spec.template.spec.initContainers[0].resources.requests",
        "spec.template.spec.initContainers[0].resources.limits",
    }


@pytest.mark.parametrize(
    ("image", "expected"),
    [("nginx", "untagged"), ("nginx:latest", ":latest"), ("localhost:5000/app", "untagged")],
)
def test_unpinned_images_are_flagged(image: str, expected: str) -> None:
    found = check(DEPLOYMENT.replace("ghcr.io/mlflow/mlflow:v3.17.2", image))
    (finding,) = found
    assert finding.path == "spec.template.spec.containers[0].image"
    assert expected in finding.message


def test_digest_pinned_image_passes() -> None:
    digest = "ghcr.io/mlflow/mlflow@sha256:" + "a" * 64
    assert check(DEPLOYMENT.replace("ghcr.io/mlflow/mlflow:v3.17.2", digest)) == []


# --- CRDs --------------------------------------------------------------------------------


def test_valid_inference_services_pass(schemas: Path) -> None:
    assert check(ISVC_IMAGE, schemas) == []
    assert check(ISVC_STORAGE.replace("STORAGE", "s3://models/wine/1"), schemas) == []


def test_inference_service_unknown_field_fails(schemas: Path) -> None:
    (finding,) = check(ISVC_IMAGE.replace("    containers:", "    replicaz: 2\n    containers:"), schemas)
    assert (finding.kind, finding.path) == ("InferenceService", "spec.predictor")
    assert "'replicaz' was unexpected" in finding.message


def test_inference_service_image_not_pinned(schemas: Path) -> None:
    (finding,) = check(ISVC_IMAGE.replace(":v3", ""), schemas)
    assert finding.path == "spec.predictor.containers[0].image"
    assert "not pinned by the overlay's images: entry" in finding.message


def test_inference_service_storage_uri_must_be_set(schemas: Path) -> None:
    (finding,) = check(ISVC_STORAGE.replace("STORAGE", '""'), schemas)
    assert finding.path == "spec.predictor.model.storageUri"


def test_argo_application_typo_in_sync_policy_fails(schemas: Path) -> None:
    assert check(APPLICATION, schemas) == []
    (finding,) = check(APPLICATION.replace("automated:", "automatd:"), schemas)
    assert str(finding).startswith("dev: Application/mlflow-dev: spec.syncPolicy: Additional properties")
    assert "'automatd' was unexpected" in finding.message


def test_unknown_crd_kind_is_unchecked_not_passed(schemas: Path) -> None:
    text = "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\nspec: {size: 3}\n"
    (finding,) = check(text, schemas)
    assert finding.severity == UNCHECKED
    assert finding.message == f"unchecked: no schema for example.com/v1 Widget in {schemas} or packaged with gitops-tool"


def test_without_a_schema_dir_the_packaged_crd_schemas_check() -> None:
    assert check(ISVC_IMAGE, None) == []
    findings = check(ISVC_IMAGE.replace("predictor:", "predicter:"), None)
    assert findings and all(f.severity == "error" for f in findings)
    assert any("'predicter' was unexpected" in f.message for f in findings)
    (finding,) = check("apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n", None)
    assert finding.severity == UNCHECKED
    assert finding.message.endswith("Widget (none packaged with gitops-tool, no --schema-dir given)")


def test_unserved_crd_version_is_an_error(schemas: Path) -> None:
    (finding,) = check(ISVC_IMAGE.replace("v1beta1", "v1alpha9"), schemas)
    assert finding.severity == "error" and "not a served version" in finding.message


# --- Secret scan -------------------------------------------------------------------------

# Built at run time so the repository's own secret scan never sees a key-shaped literal.
_PEM_KIND = "RSA " + "PRIVATE KEY"
FAKE_PEM = f"-----BEGIN {_PEM_KIND}-----\nMIIEpAIBAAKCAQEAfake\n-----END {_PEM_KIND}-----\n"
FAKE_GHP = "ghp_" + "A1b2C3d4E5" * 3 + "F6g7H8"


def test_scan_text_hits_pem_and_github_token() -> None:
    text = f"# notes\nkey: |\n  {FAKE_PEM.replace(chr(10), chr(10) + '  ')}\ntoken: {FAKE_GHP}\n"
    hits = scan_text(text, "notes.txt")
    assert [(h.rule, h.line) for h in hits] == [("private-key", 3), ("github-token", 7)]
    assert FAKE_GHP not in str(hits[1])  # redacted


def test_scan_text_hits_literal_password_env_but_not_refs_or_comments() -> None:
    literal = "env:\n  - name: DB_PASSWORD\n    value: hunter2\n"
    (hit,) = scan_text(literal, "deploy.yaml")
    assert hit.rule == "literal-env-secret" and hit.line == 2
    assert scan_text(DEPLOYMENT, "deploy.yaml") == []  # secretKeyRef and comment mention password
    assert scan_text("# set the password in the Secret, never here\npassword_hint: see docs\n", "a.yaml") == []


@pytest.mark.parametrize(
    ("name", "hit"),
    [("DB_PASSWORD", True), ("MLFLOW_TRACKING_TOKEN", True), ("API_KEY", True), ("AWS_SECRET_ACCESS_KEY", True),
     ("AWS_ACCESS_KEY_ID", False), ("PASSWORD_FILE", False), ("KEYCLOAK_REALM", False),
     ("MLFLOW_S3_ENDPOINT_URL", False), ("MONKEY", False)],
)
def test_secret_env_names(name: str, hit: bool) -> None:
    assert bool(scan_text(f"env:\n  - name: {name}\n    value: x1\n", "d.yaml")) is hit


def test_literal_secret_env_in_manifest_is_a_finding() -> None:
    text = DEPLOYMENT.replace(
        "            - name: MLFLOW_TRACKING_PASSWORD",
        "            - name: AWS_SECRET_ACCESS_KEY\n              value: abc123\n            - name: MLFLOW_TRACKING_PASSWORD",
    )
    (finding,) = check(text)
    assert finding.path == "spec.template.spec.containers[0].env[0].value"
    assert "AWS_SECRET_ACCESS_KEY" in finding.message


def test_token_in_configmap_is_a_finding() -> None:
    text = f"apiVersion: v1\nkind: ConfigMap\nmetadata: {{name: c}}\ndata:\n  slack: {FAKE_GHP}\n"
    (finding,) = check(text)
    assert finding.path == "data.slack" and "github-token" in finding.message


def test_scan_tree_uses_git_and_skips_binaries(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "leak.yaml").write_text(f"token: {FAKE_GHP}\n")
    (repo / "untracked.txt").write_text(f"token: {FAKE_GHP}\n")
    (repo / "blob.bin").write_bytes(b"\0\1" + FAKE_PEM.encode())
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "leak.yaml", "blob.bin"], check=True)
    assert [(h.source, h.rule) for h in scan_tree(repo)] == [("leak.yaml", "github-token")]


def test_scan_tree_walks_a_plain_folder_skipping_venv(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    (plain / ".venv").mkdir(parents=True)
    (plain / ".venv" / "x.py").write_text(FAKE_PEM)
    (plain / "key.pem").write_text(FAKE_PEM)
    assert [(h.source, h.rule) for h in scan_tree(plain)] == [("key.pem", "private-key")]


# --- validate_all ------------------------------------------------------------------------


def test_validate_all_renders_and_checks_each_env(tmp_path: Path) -> None:
    base = tmp_path / "base"
    base.mkdir()
    (base / "deployment.yaml").write_text(DEPLOYMENT)
    (base / "kustomization.yaml").write_text("resources: [deployment.yaml]\n")
    for env, tag in [("dev", "v3.17.2"), ("prod", "latest")]:
        overlay = tmp_path / env
        overlay.mkdir()
        (overlay / "kustomization.yaml").write_text(
            f"namespace: mlflow-{env}\nresources: [../base]\n"
            f"images: [{{name: ghcr.io/mlflow/mlflow, newTag: {tag}}}]\n"
        )
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "kustomization.yaml").write_text("resources: [missing.yaml]\n")
    envs = {"dev": tmp_path / "dev", "prod": tmp_path / "prod", "broken": broken}
    findings = validate_all(envs, schema_dir=None, k8s_version=K8S_VERSION, max_workers=3)
    assert [(f.env, f.kind, f.path) for f in findings] == [
        ("prod", "Deployment", "spec.template.spec.containers[0].image"),
        ("broken", "Kustomization", str(broken)),
    ]
    assert "missing.yaml" in findings[1].message
    assert str(findings[1]).startswith(f"broken: Kustomization/broken: {broken}: ")
