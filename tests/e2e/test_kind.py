"""End to end on a real cluster: kind, Argo CD, the generated platform and one promotion.

It runs in GitHub Actions (.github/workflows/e2e-kind.yaml sets GITOPS_E2E=1); anywhere else it
skips. The procedure, which is also how to try the platform on a laptop:

1. create a kind cluster and install, pinned: Argo CD, ingress-nginx (kind provider: the platform's
   Ingress is Healthy only once a controller publishes its address) and the CRDs the platform uses
   (ServiceMonitor, PodMonitor, PrometheusRule, InferenceService - the CRDs only: nothing scrapes or
   serves here; tests/test_e2e_setup.py checks the list covers every CRD kind the platform renders);
2. write a one-environment platform with `gitops-tool generate`, commit it to a bare repository
   that a Git smart-HTTP server on this machine serves to Argo CD (via the kind network's gateway);
3. create the platform Secrets with random values (they never live in Git);
4. apply argocd/ and wait until the Application is Synced and Healthy;
5. port-forward to the in-cluster MLflow, register a wine model and point @candidate at it;
6. `gitops-tool promote wine-classifier@candidate`, then wait until Argo CD has synced exactly that
   commit and the InferenceService in the cluster runs the promoted image.

GITOPS_E2E_KEEP=1 keeps the cluster for inspection (`kind delete cluster --name gitops-e2e`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml

CLUSTER = "gitops-e2e"
ARGOCD_VERSION = "v3.3.3"
INGRESS_NGINX = ("https://raw.githubusercontent.com/kubernetes/ingress-nginx/controller-v1.12.1/"
                 "deploy/static/provider/kind/deploy.yaml")
PROMETHEUS_OPERATOR_CRDS = ("https://raw.githubusercontent.com/prometheus-operator/prometheus-operator/v0.80.0/"
                            "example/prometheus-operator-crd/")
CRDS = [
    *(f"{PROMETHEUS_OPERATOR_CRDS}monitoring.coreos.com_{plural}.yaml"
      for plural in ("servicemonitors", "podmonitors", "prometheusrules")),
    "https://raw.githubusercontent.com/kserve/kserve/v0.15.0/config/crd/full/serving.kserve.io_inferenceservices.yaml",
]
ENV, MODEL, ALIAS = "dev", "wine-classifier", "candidate"
NAMESPACE, SERVING_NAMESPACE = "mlflow", "models-dev"  # the platform instance, the serving environment
PLATFORM = "dev-platform"  # the platform instance's name: its Application is <project>-platform-dev-platform
PLATFORM_APP = f"-platform-{PLATFORM}"
MLFLOW_PORT = 5000


def _docker_works() -> bool:
    if not shutil.which("docker"):
        return False
    return subprocess.run(["docker", "info"], capture_output=True, timeout=60).returncode == 0


def _skip_reason() -> str | None:
    if os.environ.get("GITOPS_E2E") != "1":
        return "end-to-end run is opt-in: set GITOPS_E2E=1 (the e2e-kind workflow does)"
    missing = [tool for tool in ("kind", "kubectl", "git") if not shutil.which(tool)]
    if missing:
        return f"not on PATH: {', '.join(missing)}"
    if not _docker_works():
        return "`docker info` fails: no Docker engine for kind"
    return None


SKIP = _skip_reason()
pytestmark = [
    pytest.mark.skipif(SKIP is not None, reason=SKIP or ""),
    pytest.mark.timeout(3600),
]


# --- helpers --------------------------------------------------------------------------------------------

def run(*args: str, cwd: Path | None = None, input: str | None = None, timeout: float = 600,
        env: dict | None = None) -> str:
    result = subprocess.run(args, cwd=cwd, input=input, capture_output=True, text=True, timeout=timeout,
                            env={**os.environ, **(env or {})})
    if result.returncode != 0:
        raise AssertionError(f"`{' '.join(args)}` exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result.stdout


def wait_for(what: str, check, timeout: float, interval: float = 5, explain=lambda: "") -> object:
    """Poll `check` until it returns something truthy; fail with `explain()` on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}\n{explain()}")


class Kube:
    """kubectl against the test cluster's own kubeconfig (the user's is never touched)."""

    def __init__(self, kubeconfig: Path):
        self.env = {"KUBECONFIG": str(kubeconfig)}

    def __call__(self, *args: str, input: str | None = None, timeout: float = 600) -> str:
        return run("kubectl", *args, input=input, timeout=timeout, env=self.env)

    def json(self, *args: str) -> dict:
        return json.loads(self(*args, "-o", "json"))


def kind_gateway() -> str:
    """The host's address on the `kind` Docker network: how pods reach a server on this machine."""
    network = json.loads(run("docker", "network", "inspect", "kind"))[0]
    for cfg in network["IPAM"]["Config"]:
        if "." in cfg.get("Gateway", ""):
            return cfg["Gateway"]
    raise AssertionError(f"no IPv4 gateway on the kind network: {network['IPAM']}")


# --- a Git smart-HTTP server for Argo CD (git http-backend behind a tiny CGI bridge) ---------------------

class GitHTTP(BaseHTTPRequestHandler):
    root: Path

    def do_GET(self) -> None:
        self._backend()

    def do_POST(self) -> None:
        self._backend()

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while size := int(self.rfile.readline().split(b";")[0], 16):
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            self.rfile.readline()
            return b"".join(chunks)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _backend(self) -> None:
        path, _, query = self.path.partition("?")
        body = self._body()
        env = {
            "PATH": os.environ["PATH"], "GIT_PROJECT_ROOT": str(self.root), "GIT_HTTP_EXPORT_ALL": "1",
            "REQUEST_METHOD": self.command, "PATH_INFO": path, "QUERY_STRING": query,
            "CONTENT_TYPE": self.headers.get("Content-Type", ""), "CONTENT_LENGTH": str(len(body)),
            "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
            "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""), "REMOTE_ADDR": self.client_address[0],
        }
        out = subprocess.run(["git", "http-backend"], input=body, env=env, capture_output=True, timeout=120).stdout
        head, _, payload = out.partition(b"\r\n\r\n")
        status, headers = 200, []
        for line in head.decode("latin-1").split("\r\n"):
            key, _, value = line.partition(":")
            if key.lower() == "status":
                status = int(value.split()[0])
            elif key:
                headers.append((key, value.strip()))
        self.send_response(status)
        for key, value in headers:
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args: object) -> None:  # keep pytest output readable
        pass


@pytest.fixture(scope="module")
def git_server(tmp_path_factory):
    root = tmp_path_factory.mktemp("git")
    run("git", "init", "--bare", "--initial-branch=main", str(root / "platform.git"))
    handler = type("Handler", (GitHTTP,), {"root": root})
    server = ThreadingHTTPServer(("0.0.0.0", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root / "platform.git", server.server_address[1]
    server.shutdown()


# --- the cluster ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def kube(tmp_path_factory) -> Kube:
    kubeconfig = tmp_path_factory.mktemp("kube") / "config"
    run("kind", "create", "cluster", "--name", CLUSTER, "--kubeconfig", str(kubeconfig), "--wait", "180s")
    k = Kube(kubeconfig)
    try:
        k("label", "node", f"{CLUSTER}-control-plane", "ingress-ready=true")
        k("create", "namespace", "argocd")
        # --server-side: the ApplicationSet CRD is too big for the last-applied annotation.
        k("apply", "-n", "argocd", "--server-side", "--force-conflicts", "-f",
          f"https://raw.githubusercontent.com/argoproj/argo-cd/{ARGOCD_VERSION}/manifests/install.yaml")
        k("apply", "-f", INGRESS_NGINX)
        for url in CRDS:
            k("apply", "--server-side", "-f", url)
        for workload in ("deployment/argocd-repo-server", "deployment/argocd-server",
                         "statefulset/argocd-application-controller"):
            k("-n", "argocd", "rollout", "status", workload, "--timeout=600s", timeout=660)
        k("-n", "ingress-nginx", "wait", "--for=condition=ready", "pod",
          "--selector=app.kubernetes.io/component=controller", "--timeout=600s", timeout=660)
        yield k
    finally:
        if os.environ.get("GITOPS_E2E_KEEP") != "1":
            run("kind", "delete", "cluster", "--name", CLUSTER, "--kubeconfig", str(kubeconfig))


# --- the platform ---------------------------------------------------------------------------------------

def e2e_config(repo_url: str) -> str:
    """The starter gitops.yaml cut down to the platform and one serving environment on one kind cluster."""
    from gitops_tool.project import starter_config

    raw = yaml.safe_load(starter_config())
    raw["repo"]["url"] = repo_url
    raw["argocd"].pop("clusters", None)  # everything in-cluster
    platform = raw["platform"]
    platform["tracking_uri"] = f"http://127.0.0.1:{MLFLOW_PORT}"
    platform["mlflow"] |= {"workers": 1, "extra_allowed_hosts": ["localhost:*", "127.0.0.1:*"]}  # port-forward Host
    platform["receiver"] = {"enabled": False}  # this test promotes from the runner
    # A dev-named instance may take its Secrets from `local` files: the run creates them with kubectl.
    main = platform["instances"][PLATFORM] = platform["instances"].pop("main")
    main.pop("autoscaling", None)
    main |= {"secrets": {"method": "local"}, "replicas": 1, "storage": {"postgres": "1Gi", "object_store": "1Gi"}, "tls": {"enabled": False},
             "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"cpu": "1", "memory": "2Gi"}}}
    raw["environments"] = {ENV: raw["environments"][ENV]}
    model = raw["models"][MODEL]
    model["aliases"] = {ALIAS: ENV}
    model["gates"].pop("require_previous_stage", None)
    return yaml.safe_dump(raw, sort_keys=False)


@pytest.fixture(scope="module")
def checkout(git_server, tmp_path_factory) -> tuple[Path, str]:
    """A clone whose origin is the served bare repository, with the generated platform pushed."""
    bare, port = git_server
    repo_url = f"http://{kind_gateway()}:{port}/platform.git"
    work = tmp_path_factory.mktemp("work") / "platform"
    run("git", "clone", str(bare), str(work))
    (work / "gitops.yaml").write_text(e2e_config(repo_url), encoding="utf-8")
    tool("generate", cwd=work)
    run("git", "add", "-A", cwd=work)
    run("git", "-c", "user.name=e2e", "-c", "user.email=e2e@example.invalid", "commit", "-qm",
        "platform for the e2e run", cwd=work)
    run("git", "push", "origin", "HEAD:main", cwd=work)
    return work, repo_url


def tool(*args: str, cwd: Path) -> str:
    return run(sys.executable, "-m", "gitops_tool.cli.main", *args, cwd=cwd,
               env={"GIT_AUTHOR_NAME": "e2e", "GIT_AUTHOR_EMAIL": "e2e@example.invalid",
                    "GIT_COMMITTER_NAME": "e2e", "GIT_COMMITTER_EMAIL": "e2e@example.invalid"})


def platform_secrets() -> dict[str, dict[str, str]]:
    """Every Secret the platform reads, with fresh random values in the formats the pods expect."""
    from gitops_tool.platform.common import SECRETS

    pg_user, pg_pass = "mlflow", secrets.token_urlsafe(24)
    admin_pass = secrets.token_urlsafe(18)
    sha1 = base64.b64encode(hashlib.sha1(admin_pass.encode()).digest()).decode()
    values = {name: {key: secrets.token_urlsafe(24) for key in spec["keys"]} for name, spec in SECRETS.items()}
    values |= {
        "postgres-credentials": {"POSTGRES_USER": pg_user, "POSTGRES_PASSWORD": pg_pass},
        "minio-credentials": {"MINIO_ROOT_USER": "minio-admin", "MINIO_ROOT_PASSWORD": secrets.token_urlsafe(24)},
        "mlflow-backend": {"backend-store-uri": f"postgresql://{pg_user}:{pg_pass}@postgres:5432/mlflow"},
        "mlflow-keys": {"webhook-encryption-key": base64.urlsafe_b64encode(os.urandom(32)).decode(),  # Fernet key
                        "flask-secret-key": os.urandom(24).hex()},
        "mlflow-basic-auth": {"auth": f"admin:{{SHA}}{sha1}\n"},  # an htpasswd line nginx accepts
    }
    return values


def create_secrets(kube: Kube) -> None:
    kube("create", "namespace", NAMESPACE)
    for name, data in platform_secrets().items():
        literals = [f"--from-literal={key}={value}" for key, value in data.items()]
        kube("create", "secret", "generic", name, "-n", NAMESPACE, *literals)


def application(kube: Kube, suffix: str = f"-{ENV}") -> dict:
    """The serving environment's Application (or, with suffix=PLATFORM_APP, the platform's)."""
    apps = kube.json("get", "applications", "-n", "argocd")["items"]
    return next((a for a in apps if a["metadata"]["name"].endswith(suffix)), {})


def app_state(app: dict) -> tuple[str, str, str]:
    status = app.get("status", {})
    return (status.get("sync", {}).get("status", "?"), status.get("health", {}).get("status", "?"),
            status.get("sync", {}).get("revision", ""))


def explain(kube: Kube):
    def text() -> str:
        app = application(kube, PLATFORM_APP)
        lagging = [f"  {r.get('kind')}/{r.get('name')}: sync={r.get('status')} health={r.get('health', {})}"
                   for r in app.get("status", {}).get("resources", [])
                   if r.get("status") != "Synced" or r.get("health", {}).get("status", "Healthy") != "Healthy"]
        conditions = app.get("status", {}).get("conditions", [])
        pods = kube("get", "pods", "-n", NAMESPACE, "-o", "wide")
        return (f"application: {app_state(app)}\nconditions: {conditions}\nnot ready:\n" + "\n".join(lagging)
                + f"\npods:\n{pods}")
    return text


@pytest.fixture(scope="module")
def synced_platform(kube: Kube, checkout) -> tuple[Path, str]:
    work, _ = checkout
    create_secrets(kube)
    kube("apply", "-k", str(work / "argocd"))

    def synced_and_healthy():
        states = [app_state(application(kube, suffix)) for suffix in (PLATFORM_APP, f"-{ENV}")]
        return all((sync, health) == ("Synced", "Healthy") for sync, health, _ in states)

    wait_for("the platform and serving Applications to be Synced and Healthy", synced_and_healthy, timeout=1500,
             explain=explain(kube))
    return checkout


@pytest.fixture(scope="module")
def mlflow_url(kube: Kube, synced_platform):
    """The in-cluster MLflow on 127.0.0.1 through `kubectl port-forward`."""
    proc = subprocess.Popen(
        ["kubectl", "port-forward", "-n", NAMESPACE, "svc/mlflow", f"{MLFLOW_PORT}:{MLFLOW_PORT}"],
        env={**os.environ, **kube.env}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{MLFLOW_PORT}"

    def healthy() -> bool:
        try:
            return requests.get(f"{url}/health", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for("the MLflow port-forward", healthy, timeout=120, interval=2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- the tests ------------------------------------------------------------------------------------------

def test_platform_is_synced_from_git(kube: Kube, synced_platform):
    work, _ = synced_platform
    for suffix in (PLATFORM_APP, f"-{ENV}"):
        sync, health, revision = app_state(application(kube, suffix))
        assert (sync, health) == ("Synced", "Healthy")
        assert revision == run("git", "rev-parse", "HEAD", cwd=work).strip()
    ready = kube.json("get", "deployment", "mlflow", "-n", NAMESPACE)["status"].get("readyReplicas")
    assert ready == 1


def test_promotion_is_synced_by_argocd(kube: Kube, synced_platform, mlflow_url: str):
    from mlflow import MlflowClient

    from gitops_tool.mlflow_local import train_wine_version

    work, _ = synced_platform
    version = train_wine_version(mlflow_url, MODEL)["version"]
    MlflowClient(mlflow_url).set_registered_model_alias(MODEL, ALIAS, version)

    out = tool("promote", f"{MODEL}@{ALIAS}", "--trigger", "workflow", "--output", "json",
               "--tracking-uri", mlflow_url, cwd=work)
    result = json.loads(out)
    assert result["pushed"] and result["commit"] and result["to"] == version and result["env"] == ENV

    app_name = application(kube)["metadata"]["name"]
    kube("annotate", "application", app_name, "-n", "argocd", "argocd.argoproj.io/refresh=normal", "--overwrite")

    def synced_at_commit():
        sync, _, revision = app_state(application(kube))
        return sync == "Synced" and revision == result["commit"]

    wait_for(f"Argo CD to sync {result['commit'][:12]}", synced_at_commit, timeout=600, explain=explain(kube))
    isvc = kube.json("get", "inferenceservice", MODEL, "-n", SERVING_NAMESPACE)
    assert isvc["spec"]["predictor"]["containers"][0]["image"] == result["image"]
    # No KServe controller runs here, so the model is deployed (in Git and in the API), not served.
