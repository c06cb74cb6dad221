"""Bring the rendered platform up as real processes: what a cluster would run at first sync.

Real parts: Debian's PostgreSQL 15 binaries, `mlflow server` 3.17.2 and `mlflow db upgrade` with the
rendered command/args/env, the real receiver and register Job (`gitops-tool webhook ...`), nginx
configured from the rendered Ingress and the generated htpasswd entry, MLflow's scoring server started
by the image-mode entrypoint (platform/model_image.py) from `mlflow models generate-dockerfile` output.

Stand-ins (no cluster, Docker or MinIO binary here):
- moto's server (`moto_server`) for MinIO, on the Service's port; the bucket is created with boto3
  in place of the bucket Job's `mc mb`;
- a tiny script in place of the postgres image's docker-entrypoint.sh (initdb, create POSTGRES_DB,
  then `postgres`), run with the container's env as its UID; it adds log_statement=ddl so the
  test can count migrations;
- nginx in place of ingress-nginx (TLS with a self-signed certificate in place of cert-manager's);
- a bare Git repository on disk in place of GitHub (bound writable into the receiver);
- /etc/hosts in place of cluster DNS; two loopback network namespaces in place of pod networking
  (the platform's, and a serving namespace's, where the predictor's 8080 does not clash with the
  receiver's).
"""

from __future__ import annotations

import json
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

from tests.platform.ingress import nginx_conf
from tests.platform.netns import Netns
from tests.platform.pods import Container, Running, Sandbox, Volume, run_to_completion, start, wait_probe

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
PG_BIN = Path("/usr/lib/postgresql/15/bin")
NGINX = Path("/usr/sbin/nginx")
HOST = "mlflow.example.com"
USER, PASSWORD = "alice", secrets.token_urlsafe(12)
SERVICES = ["postgres", "minio", "minio.mlflow.svc.cluster.local", "mlflow", "mlflow.mlflow.svc.cluster.local",
            "gitops-webhook", HOST]
UIDS = {10432: "postgres-pod", 10001: "mlflow-pod", 10002: "gitops-pod", 10003: "model-pod"}

# The postgres image's entrypoint, reduced to what it does on an empty volume (see module docstring).
POSTGRES_ENTRYPOINT = """set -eu
if [ ! -s "$PGDATA/PG_VERSION" ]; then
  mkdir -p "$PGDATA" && chmod 700 "$PGDATA"
  printf '%s\\n' "$POSTGRES_PASSWORD" > /tmp/pwfile
  initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile=/tmp/pwfile --auth-local=trust --auth-host=scram-sha-256 >/dev/null
  rm /tmp/pwfile
  echo "host all all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
  postgres -D "$PGDATA" -c listen_addresses= -k /var/run/postgresql & pid=$!
  until pg_isready -q -h /var/run/postgresql; do sleep 0.2; done
  psql -q -h /var/run/postgresql -U "$POSTGRES_USER" -d postgres -c "CREATE DATABASE \\"$POSTGRES_DB\\""
  kill $pid; wait $pid || true
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -k /var/run/postgresql -c log_statement=ddl
"""


def find(docs: list[dict], kind: str, name: str) -> dict:
    return next(d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name)


def git(*args: str, cwd: Path) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr}")
    return done.stdout


class Platform:
    """The processes of one platform instance and one serving environment, and what the test saw."""

    def __init__(self, root: Path, project: Path, cgroups: bool) -> None:
        self.root, self.project, self.cgroups = root, project, cgroups
        self.box = Sandbox(root, {name: "127.0.0.1" for name in SERVICES}, UIDS,
                           f"{VENV_BIN}:{PG_BIN}:/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin")
        self.net = Netns("platform")
        self.serving_net = Netns("serving")
        self.running: dict[str, Running] = {}
        self.probes: dict[str, int] = {}
        self.jobs: dict[str, tuple[int, str]] = {}
        self.aux: list[subprocess.Popen] = []
        self.secrets = self._secrets()

    # -- helpers -------------------------------------------------------------------------------
    def _secrets(self) -> dict[str, dict[str, str]]:
        from cryptography.fernet import Fernet

        pg_password = secrets.token_urlsafe(16)
        return {
            "postgres-credentials": {"POSTGRES_USER": "mlflow", "POSTGRES_PASSWORD": pg_password},
            "mlflow-backend": {"backend-store-uri": f"postgresql+psycopg2://mlflow:{pg_password}@postgres:5432/mlflow"},
            "mlflow-keys": {"flask-secret-key": secrets.token_hex(16), "webhook-encryption-key": Fernet.generate_key().decode()},
            "minio-credentials": {"MINIO_ROOT_USER": "boot-test", "MINIO_ROOT_PASSWORD": secrets.token_hex(12)},
            "gitops-webhook": {"hmac-secret": secrets.token_hex(24)},
            "gitops-git-credentials": {"token": "unused-by-a-file-remote"},
        }

    def dir_for(self, name: str, uid: int) -> Path:
        """An emptyDir/PVC stand-in owned by the pod's fsGroup, as the kubelet prepares it."""
        path = self.root / "volumes" / name
        path.mkdir(parents=True, exist_ok=True)
        shutil.chown(path, uid, uid)
        return path

    def secret_dir(self, secret: str, uid: int) -> Path:
        path = self.dir_for(f"secret-{secret}", 0)
        for key, value in self.secrets[secret].items():
            (path / key).write_text(value)
            (path / key).chmod(0o644)
        path.chmod(0o755)
        return path

    def container(self, docs: list[dict], kind: str, name: str, cname: str | None = None) -> Container:
        workload = find(docs, kind, name)
        pod = workload["spec"]["template"]["spec"]
        spec = next(c for c in pod["containers"] if cname is None or c["name"] == cname)
        uid = (pod.get("securityContext") or {})["runAsUser"]
        volumes = {}
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                volumes[volume["name"]] = Volume(self.secret_dir(volume["secret"]["secretName"], uid), True)
            elif "configMap" in volume:
                volumes[volume["name"]] = Volume(self.config_map_dir(), True)
            else:
                volumes[volume["name"]] = Volume(self.dir_for(f"{name}-{volume['name']}", uid))
        for claim in workload["spec"].get("volumeClaimTemplates", []):
            volumes[claim["metadata"]["name"]] = Volume(self.dir_for(f"{name}-{claim['metadata']['name']}", uid))
        return Container(name, spec, pod, volumes)

    def config_map_dir(self) -> Path:
        path = self.dir_for("configmap-gitops-tool-config", 0)
        shutil.copy(self.project / "base/platform/receiver/gitops.yaml", path / "gitops.yaml")
        (path / "gitops.yaml").chmod(0o644)
        return path

    def start(self, key: str, c: Container, net: Netns | None = None, **kw) -> Running:
        running = start(self.box, c, net or self.net, self.secrets, cgroups=self.cgroups, **kw)
        self.running[key] = running
        return running

    def probe(self, key: str, *kinds: str, net: Netns | None = None) -> None:
        for kind in kinds:
            if kind in self.running[key].container.spec:
                self.probes[f"{key}.{kind}"] = wait_probe(self.box, self.running[key], kind, net or self.net,
                                                          self.secrets)

    def job(self, key: str, c: Container, timeout: float = 600) -> tuple[int, str]:
        self.jobs[key] = run_to_completion(self.box, c, self.net, self.secrets, timeout=timeout, cgroups=False)
        return self.jobs[key]

    def in_netns(self, argv: list[str], net: Netns | None = None, env: dict | None = None,
                 timeout: float = 600) -> subprocess.CompletedProcess:
        """A root process in the network namespace with the cluster's /etc/hosts (a client, nginx, moto)."""
        hosts, _, _ = self.box.files()
        script = f"mount --make-rprivate / && mount --bind {hosts} /etc/hosts && exec \"$@\""
        return subprocess.run(["nsenter", f"--net={(net or self.net).path}", "unshare", "--mount", "--fork",
                               "sh", "-c", script, "sh", *argv], env=env, capture_output=True, text=True,
                              timeout=timeout)

    def spawn_in_netns(self, argv: list[str], log: Path) -> subprocess.Popen:
        hosts, _, _ = self.box.files()
        script = f"mount --make-rprivate / && mount --bind {hosts} /etc/hosts && exec \"$@\""
        with log.open("wb") as out:
            proc = subprocess.Popen(["nsenter", f"--net={self.net.path}", "unshare", "--mount", "--fork", "sh", "-c",
                                     script, "sh", *argv], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        self.aux.append(proc)
        return proc

    def wait_port(self, port: int, timeout: float = 60) -> None:
        import socket

        def connect() -> None:
            with socket.create_connection(("127.0.0.1", port), timeout=2):
                pass
        deadline = time.time() + timeout
        while True:
            try:
                return self.net.call(connect)
            except OSError:
                if time.time() > deadline:
                    raise
                time.sleep(0.3)

    def stop(self) -> None:
        for running in reversed(list(self.running.values())):
            running.stop()
        for proc in self.aux:
            if proc.poll() is None:
                import os
                import signal
                os.killpg(proc.pid, signal.SIGTERM)
                proc.wait(20)
        self.net.close()
        self.serving_net.close()

    # -- the object store, nginx, the client --------------------------------------------------
    def start_object_store(self) -> None:
        """moto's S3 server on MinIO's Service port, and the bucket the bucket Job would create."""
        self.spawn_in_netns([str(VENV_BIN / "moto_server"), "-H", "0.0.0.0", "-p", "9000"], self.root / "moto.log")
        self.wait_port(9000)
        creds = self.secrets["minio-credentials"]

        def make_bucket() -> None:
            import boto3

            s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:9000", region_name="us-east-1",
                              aws_access_key_id=creds["MINIO_ROOT_USER"],
                              aws_secret_access_key=creds["MINIO_ROOT_PASSWORD"])
            s3.create_bucket(Bucket="mlflow-artifacts")
        self.net.call(make_bucket)

    def s3_keys(self) -> list[str]:
        creds = self.secrets["minio-credentials"]

        def keys() -> list[str]:
            import boto3

            s3 = boto3.client("s3", endpoint_url="http://127.0.0.1:9000", region_name="us-east-1",
                              aws_access_key_id=creds["MINIO_ROOT_USER"],
                              aws_secret_access_key=creds["MINIO_ROOT_PASSWORD"])
            pages = s3.get_paginator("list_objects_v2").paginate(Bucket="mlflow-artifacts")
            return [o["Key"] for page in pages for o in page.get("Contents", [])]
        return self.net.call(keys)

    def start_nginx(self, ingress: dict) -> None:
        """nginx in place of ingress-nginx, configured from the rendered Ingress (tests/platform/ingress.py)."""
        from gitops_tool.secrets.htpasswd import entry

        conf_dir = self.root / "nginx"
        (conf_dir / "tmp").mkdir(parents=True)
        (conf_dir / "htpasswd").write_text(entry(USER, PASSWORD) + "\n")  # what `gitops-tool secrets htpasswd` makes
        (conf_dir / "nginx.conf").write_text(nginx_conf(ingress, conf_dir, self.service_port(ingress)))
        self.spawn_in_netns([str(NGINX), "-c", str(conf_dir / "nginx.conf"), "-g", "daemon off;"],
                            self.root / "nginx.log")
        self.wait_port(443, timeout=30)

    def service_port(self, ingress: dict) -> int:
        """The backend Service's named port, resolved to its number from the rendered Service."""
        backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
        service = find(self.docs, "Service", backend["name"])
        return next(p["port"] for p in service["spec"]["ports"] if p["name"] == backend["port"]["name"])

    def client(self, code: str, **env: str) -> dict:
        """Run a Python client in the platform's network namespace; it prints one JSON line."""
        import os

        base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
        result = self.in_netns([sys.executable, "-c", code], env=base | env)
        if result.returncode != 0:
            raise AssertionError(f"client failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")
        return json.loads(result.stdout.strip().splitlines()[-1])


def make_project(root: Path, remote: Path) -> Path:
    """`gitops-tool init`, with the repo URL pointing at the bare remote, committed and pushed."""
    from gitops_tool.project import generate, init_project

    project = root / "gitops"
    init_project(project, prod_approval="direct")  # a file:// remote is no GitHub repository to open PRs in
    config = project / "gitops.yaml"
    text = config.read_text().replace("https://github.com/example-org/mlflow-gitops.git", f"file://{remote}")
    config.write_text(text)
    generate(config)
    git("init", "--quiet", "--bare", "-b", "main", str(remote), cwd=root)
    for args in (("init", "--quiet", "-b", "main"), ("add", "-A"),
                 ("-c", "user.name=boot", "-c", "user.email=boot@localhost", "commit", "--quiet", "-m", "platform"),
                 ("remote", "add", "origin", str(remote)), ("push", "--quiet", "origin", "main")):
        git(*args, cwd=project)
    return project


def rendered(overlay: Path) -> list[dict]:
    from gitops_tool.kustomize.render import render

    return [d for d in yaml.safe_load_all(render(overlay)) if d]
