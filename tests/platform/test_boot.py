"""The generated platform starts and serves, run as real processes under the pods' declared constraints.

One module-scoped bring-up (tests/platform/cluster.py names every real part and every stand-in):
render `platform/main` from a fresh `gitops-tool init`, then, in sync-wave order,
PostgreSQL (wave 0) -> the migration Job (wave 1) -> MLflow (wave 2) -> the receiver (wave 3)
-> the PostSync register Job; nginx configured from the rendered Ingress in front of MLflow;
a client logs a model through nginx with basic auth; MLflow's webhook reaches the receiver,
which commits the promotion to the Git remote; the promoted dev overlay's predictor then serves
the model from the image-mode entrypoint under the InferenceService's securityContext.
Skips (with the reason) where this kernel or machine cannot make the namespaces.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from tests.platform import pods
from tests.platform.cluster import HOST, PASSWORD, PG_BIN, USER, NGINX, Platform, find, git, make_project, rendered

pytestmark = pytest.mark.timeout(1200)

CLIENT = """
import json, os, requests
from gitops_tool.mlflow_local import train_wine_version
from mlflow import MlflowClient
uri = os.environ["MLFLOW_TRACKING_URI"]
anonymous = requests.get(uri + "/api/2.0/mlflow/experiments/search?max_results=1", verify=False).status_code
info = train_wine_version(uri, "wine-classifier")
client = MlflowClient(uri)
browser = requests.post(uri + "/api/2.0/mlflow/registered-models/alias", verify=False,
                        auth=(os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"]),
                        headers={"Origin": "https://" + os.environ["HOST"]},
                        json={"name": "wine-classifier", "alias": "candidate", "version": info["version"]})
version = client.get_model_version_by_alias("wine-classifier", "candidate")
print(json.dumps({"anonymous": anonymous, "version": info["version"], "browser_alias": browser.status_code,
                  "source": version.source, "run_id": info["run_id"]}))
"""

DOCKERFILE = """
import json, os, subprocess, sys
out = sys.argv[1]
subprocess.run([sys.executable, "-m", "mlflow", "models", "generate-dockerfile", "-m", "models:/wine-classifier/1", "-d", out], check=True,
               capture_output=True)
print(json.dumps({"ok": True}))
"""


@pytest.fixture(scope="module")
def platform():
    reason = pods.why_not_supported()
    if reason:
        pytest.skip(reason)
    for binary in (PG_BIN / "initdb", NGINX, Path("/usr/bin/openssl")):
        if not binary.exists():
            pytest.skip(f"{binary} is missing (.ci/run installs postgresql-15, nginx-light and openssl)")
    root = Path(tempfile.mkdtemp(prefix="gitops-boot-", dir="/var/tmp"))
    root.chmod(0o755)  # the pods' UIDs read the volumes and config below it
    remote = root / "remote.git"
    project = make_project(root, remote)
    shutil.chown(root, 0, 0)
    cgroups = pods.memory_cgroups_available()
    p = Platform(root, project, cgroups)
    try:
        _bring_up(p, remote)
        yield p
    finally:
        p.stop()
        shutil.rmtree(root, ignore_errors=True)


def _bring_up(p: Platform, remote: Path) -> None:
    started = time.monotonic()
    p.timings = {}

    def mark(step: str) -> None:
        p.timings[step] = round(time.monotonic() - started, 1)

    docs = rendered(p.project / "environments/platform/main")
    p.docs = docs
    # wave 0: PostgreSQL, and MinIO (moto) with its bucket.
    p.start("postgres", p.container(docs, "StatefulSet", "postgres"),
            default_command=["sh", "-c", pods_entrypoint()])
    p.probe("postgres", "startupProbe", "readinessProbe", "livenessProbe")
    p.start_object_store()
    mark("postgres+s3")
    # wave 1: the migration Job, once.
    rc, log = p.job("migrate", p.container(docs, "Job", "mlflow-db-upgrade"))
    assert rc == 0, log[-3000:]
    mark("migrate")
    # wave 2: MLflow.
    p.start("mlflow", p.container(docs, "Deployment", "mlflow"))
    p.probe("mlflow", "startupProbe", "readinessProbe", "livenessProbe")
    mark("mlflow")
    # wave 3: the receiver, with the Git remote (GitHub's stand-in) writable to its UID.
    receiver = p.container(docs, "Deployment", "gitops-webhook")
    for path in [remote, *remote.rglob("*")]:
        shutil.chown(path, 10002, 10002)
    receiver.extra_rw = [remote]
    p.start("receiver", receiver)
    p.probe("receiver", "readinessProbe", "livenessProbe")
    mark("receiver")
    # PostSync: register MLflow's webhook.
    rc, log = p.job("register", p.container(docs, "Job", "gitops-webhook-register"))
    assert rc == 0, log[-3000:]
    p.start_nginx(find(docs, "Ingress", "mlflow"))
    before, _ = _tip(remote)  # the receiver commits within seconds: read the tip before the alias moves
    mark("register+nginx")
    p.client_result = p.client(CLIENT, MLFLOW_TRACKING_URI=f"https://{HOST}", MLFLOW_TRACKING_USERNAME=USER,
                               MLFLOW_TRACKING_PASSWORD=PASSWORD, MLFLOW_TRACKING_INSECURE_TLS="true", HOST=HOST,
                               PYTHONWARNINGS="ignore")
    mark("client")
    p.promotion = _wait_for_promotion(remote, before)
    mark("promotion")
    print("\nbring-up timings (s):", json.dumps(p.timings), flush=True)
    _serve_promoted_model(p, remote)
    mark("predictor")
    print("\nbring-up timings (s):", json.dumps(p.timings), flush=True)


def pods_entrypoint() -> str:
    from tests.platform.cluster import POSTGRES_ENTRYPOINT

    return POSTGRES_ENTRYPOINT


def _tip(remote: Path) -> tuple[str, str]:
    out = git("-c", "safe.directory=*", "log", "-1", "--format=%H%n%B", "main", cwd=remote)
    sha, _, message = out.partition("\n")
    return sha, message


def _wait_for_promotion(remote: Path, first: str, timeout: float = 120) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        sha, message = _tip(remote)
        if sha != first:
            return {"sha": sha, "message": message}
        time.sleep(1)
    return {"sha": first, "message": ""}


def _serve_promoted_model(p: Platform, remote: Path) -> None:
    """Build the image-mode image's contents and run its entrypoint as the dev predictor pod."""
    from gitops_tool.platform.model_image import harden_build_dir

    checkout = p.dir_for("tip", 10002) / "gitops"
    # As the remote's owner: git refuses another user's repository in a local clone.
    subprocess.run(["setpriv", "--reuid=10002", "--regid=10002", "--clear-groups", "git", "clone", "--quiet",
                    str(remote), str(checkout)], check=True, capture_output=True, env={"HOME": str(checkout.parent),
                                                                                       "PATH": "/usr/bin:/bin"})
    isvc = find(rendered(checkout / "environments/dev"), "InferenceService", "wine-classifier")
    p.isvc = isvc
    build = p.root / "model-image"
    p.client(DOCKERFILE.replace("sys.argv[1]", repr(str(build))), MLFLOW_TRACKING_URI=f"https://{HOST}",
             MLFLOW_TRACKING_USERNAME=USER, MLFLOW_TRACKING_PASSWORD=PASSWORD, MLFLOW_TRACKING_INSECURE_TLS="true")
    harden_build_dir(build)
    p.dockerfile = (build / "Dockerfile").read_text()
    layer = re.search(r"^COPY (\S+) /opt/ml/model$", p.dockerfile, re.M).group(1)
    for path in [build, *build.rglob("*")]:
        path.chmod(path.stat().st_mode | 0o444 | (0o111 if path.is_dir() else 0))
    predictor = isvc["spec"]["predictor"]
    spec = dict(predictor["containers"][0])
    # The image's layer: COPY model_dir/model /opt/ml/model, read-only like the rest of the image.
    spec["volumeMounts"] = [*spec["volumeMounts"], {"name": "image-model", "mountPath": "/opt/ml/model",
                                                     "readOnly": True}]
    c = pods.Container("predictor", spec, predictor, {
        "tmp": pods.Volume(p.dir_for("predictor-tmp", 10003)),
        "image-model": pods.Volume(build / layer, True)})
    c.env_override = {"PORT": "8080", "PYTHONDONTWRITEBYTECODE": "1"}  # the Dockerfile's ENV
    p.start("predictor", c, net=p.serving_net, default_command=["sh", str(build / "serve-model")])
    p.probe("predictor", "readinessProbe", "livenessProbe", net=p.serving_net)


# --- what the list asks to see --------------------------------------------------------

def test_every_probe_passes(platform):
    expected = {"postgres.startupProbe", "postgres.readinessProbe", "postgres.livenessProbe",
                "mlflow.startupProbe", "mlflow.readinessProbe", "mlflow.livenessProbe",
                "receiver.readinessProbe", "receiver.livenessProbe",
                "predictor.readinessProbe", "predictor.livenessProbe"}
    assert set(platform.probes) == expected
    assert all(r.alive() for r in platform.running.values())


def test_migrations_ran_once(platform):
    """The Job created the schema; MLflow found it current and created nothing (PostgreSQL's DDL log)."""
    log = platform.running["postgres"].log.read_text(errors="replace")
    assert log.count("CREATE TABLE experiments") == 1, log[-2000:]
    assert log.count("CREATE TABLE alembic_version") == 1
    assert "initContainers" not in find(platform.docs, "Deployment", "mlflow")["spec"]["template"]["spec"]


def test_client_logs_a_model_through_nginx_with_basic_auth(platform):
    result = platform.client_result
    assert result["anonymous"] == 401  # the Ingress's basic auth
    assert result["version"] == "1" and result["source"].startswith("models:/m-")
    assert result["browser_alias"] == 200  # a browser write with Origin: https://<host> passes CORS
    # Metadata in PostgreSQL: read straight from the database.
    pg = platform.secrets["postgres-credentials"]
    query = platform.in_netns([str(PG_BIN / "psql"), "-h", "127.0.0.1", "-U", pg["POSTGRES_USER"], "-d", "mlflow",
                               "-Atc", "select name, version from model_versions"],
                              env={"PGPASSWORD": pg["POSTGRES_PASSWORD"], "PATH": "/usr/bin:/bin"})
    assert query.stdout.split() == ["wine-classifier|1"], query.stderr
    # Artifacts in the object store, through MLflow's artifact proxy.
    keys = platform.s3_keys()
    assert any(k.endswith("/MLmodel") for k in keys), keys


def test_mlflows_webhook_reaches_the_receiver_which_commits(platform):
    message = platform.promotion["message"]
    assert message.startswith("promote(dev): wine-classifier"), platform.running["receiver"].log.read_text()[-3000:]
    assert "Model-Version: 1" in message and "Trigger: webhook" in message and "Delivery-Id:" in message


def test_the_promoted_model_serves_under_the_predictor_constraints(platform):
    pod = platform.isvc["spec"]["predictor"]
    assert pod["securityContext"]["runAsUser"] == 10003
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True
    assert "install -y --no-install-recommends nginx" not in platform.dockerfile
    assert "USER 10003:10003" in platform.dockerfile
    rows = [[13.2, 1.78, 2.14, 11.2, 100.0, 2.65, 2.76, 0.26, 1.28, 4.38, 1.05, 3.4, 1050.0]]
    columns = ["alcohol", "malic_acid", "ash", "alcalinity_of_ash", "magnesium", "total_phenols", "flavanoids",
               "nonflavanoid_phenols", "proanthocyanins", "color_intensity", "hue",
               "od280/od315_of_diluted_wines", "proline"]
    body = json.dumps({"dataframe_split": {"columns": columns, "data": rows}}).encode()
    status, answer = platform.serving_net.http("http://127.0.0.1:8080/invocations", method="POST", data=body,
                                               headers={"Content-Type": "application/json"})
    assert status == 200, answer
    assert json.loads(answer)["predictions"] in ([0], [1], [2])


@pytest.mark.parametrize("key, uid", [("mlflow", 10001), ("receiver", 10002), ("predictor", 10003),
                                      ("postgres", 10432)])
def test_the_constraints_are_real(platform, key, uid):
    """Inside each container: its UID, a read-only root, and only the declared mounts writable."""
    running = platform.running[key]
    net = platform.serving_net if key == "predictor" else platform.net
    writable = [m["mountPath"] for m in running.container.spec["volumeMounts"] if not m.get("readOnly")
                and running.container.volumes[m["name"]].read_only is False]
    script = "id -u; touch /probe-root 2>/dev/null && echo root-writable || echo root-readonly; " + "; ".join(
        f"touch {w}/.probe && echo ok:{w}" for w in writable)
    rc, out = pods.run_to_completion(platform.box, running.container, net, platform.secrets, cgroups=False,
                                     argv=["sh", "-c", script])
    lines = out.split()
    assert lines[0] == str(uid) and "root-readonly" in lines, out
    assert all(f"ok:{w}" in lines for w in writable), out


def test_memory_stays_under_the_generated_limits(platform):
    if not platform.cgroups:
        pytest.skip("no writable cgroup v1 memory controller here: limits were not enforced")
    report = {}
    for key, running in platform.running.items():
        memory = running.memory()
        report[key] = memory
        assert memory["limit"] == running.container.memory_limit
        assert memory["max_usage"] < memory["limit"] and memory["oom_kill"] == 0, (key, memory)
    print("\nbring-up timings (s):", json.dumps(platform.timings))
    print("memory (MiB):", json.dumps({k: {n: v // 2**20 for n, v in m.items() if n != "oom_kill"}
                                         for k, m in report.items()}))


def test_mlflow_317s_default_job_execution_is_oom_killed_at_1gib(platform):
    """Why job execution is off: the same container with MLflow 3.17's default (on) in a 1 GiB cgroup.

    sqlite on the pod's /tmp instead of PostgreSQL (the OOM comes from the process count), in the
    serving network namespace so its port does not clash with the running MLflow.
    """
    if not platform.cgroups:
        pytest.skip("no writable cgroup v1 memory controller here: cannot enforce a memory limit")
    base = platform.running["mlflow"].container
    spec = {**base.spec, "resources": {"limits": {"memory": "1Gi"}}}
    c = pods.Container("mlflow-jobs-on", spec, base.pod_spec, {"tmp": pods.Volume(platform.dir_for("jobs-on-tmp", 10001))})
    c.env_override = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "true", "MLFLOW_BACKEND_STORE_URI": "sqlite:////tmp/mlflow.db"}
    running = pods.start(platform.box, c, platform.serving_net, platform.secrets)
    try:
        deadline = time.time() + 240
        while time.time() < deadline and running.memory()["oom_kill"] == 0:
            time.sleep(2)
        memory = running.memory()
    finally:
        running.stop()
    print(f"\njob execution on at 1 GiB: {memory['oom_kill']} OOM kill(s), peak {memory['max_usage'] // 2**20} MiB")
    assert memory["oom_kill"] > 0
