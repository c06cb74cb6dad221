"""A local MLflow tracking server and a real wine model, for the demo and the tests.

mlflow and scikit-learn are imported inside functions only: importing this
module costs nothing, training in-process costs the ~3 s ``import mlflow``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import requests

from gitops_tool.errors import GitopsError

# Measured on load_wine with a stratified 70/30 split (random_state=42), StandardScaler +
# LogisticRegression(lbfgs): C=0.003 gives accuracy 0.926, C=0.1 gives 1.0. Deterministic.
V1_PARAMS: dict[str, Any] = {"C": 0.003, "max_iter": 200}
V2_PARAMS: dict[str, Any] = {"C": 0.1, "max_iter": 200}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fernet_key() -> str:
    """A Fernet key (urlsafe base64 of 32 random bytes), without importing cryptography."""
    import base64

    return base64.urlsafe_b64encode(os.urandom(32)).decode()


class LocalMlflowServer:
    """``mlflow server`` on loopback with a sqlite store, in its own process group."""

    def __init__(self, workdir: Path, port: int | None = None, backend_uri: str | None = None):
        self.workdir = Path(workdir).resolve()
        self.port = port or free_port()
        self.backend_uri = backend_uri or f"sqlite:///{self.workdir / 'mlflow.db'}"
        self.log_path = self.workdir / "mlflow-server.log"
        self.encryption_key = _fernet_key()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        # --serve-artifacts is on by default in 3.x: new experiments get an
        # mlflow-artifacts:/ root, so clients upload models through this server.
        return [
            sys.executable, "-m", "mlflow", "server",
            "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
            "--backend-store-uri", self.backend_uri,
            "--artifacts-destination", str(self.workdir / "artifacts"),
        ]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        for var in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_TRACKING_TOKEN"):
            env.pop(var, None)
        env.update({
            # Webhooks to a receiver on loopback over plain http (test/demo only).
            "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
            "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
            "MLFLOW_WEBHOOK_CACHE_TTL": "1",
            "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": self.encryption_key,
            # The job runner spawns ~7 huey consumers we never use: keep 2 cores free.
            "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true",
            "DO_NOT_TRACK": "true",
            "PYTHONUNBUFFERED": "1",
        })
        return env

    def start(self, timeout: float = 60) -> LocalMlflowServer:
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.command(), cwd=self.workdir, env=self.environment(),
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,  # own process group: stop() kills all children
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self._fail(f"exited with code {self.proc.returncode}")
            if self._healthy():
                return self
            time.sleep(0.3)
        self._fail(f"did not answer {self.url}/health within {timeout:.0f} s")
        return self  # unreachable: _fail raises

    def _healthy(self) -> bool:
        try:
            return requests.get(f"{self.url}/health", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def _fail(self, what: str) -> None:
        self.stop()
        raise GitopsError(
            f"local MLflow server on port {self.port} {what}; log {self.log_path}:\n"
            f"{self.log_tail()}"
        )

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    @property
    def pgid(self) -> int | None:
        return self.proc.pid if self.proc else None  # leader of its own session

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM the whole process group, SIGKILL what is left after ``grace`` seconds."""
        if self.proc is None:
            return
        pgid = self.proc.pid
        _signal_group(pgid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and group_members(pgid):
            self.proc.poll()  # reap the leader so it does not linger as a zombie
            time.sleep(0.1)
        if group_members(pgid):
            _signal_group(pgid, signal.SIGKILL)
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL cannot be ignored
            pass
        self.proc = None

    def __enter__(self) -> LocalMlflowServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except ProcessLookupError:
        pass


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) pids in a process group, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        state, group = fields[0], int(fields[2])
        if group == pgid and state != "Z":
            members.append(int(entry.name))
    return members


def _wine_split() -> tuple[Any, Any, Any, Any]:
    from sklearn.datasets import load_wine
    from sklearn.model_selection import train_test_split

    X, y = load_wine(return_X_y=True, as_frame=True)
    return train_test_split(X, y, test_size=0.3, random_state=42, stratify=y)


def train_wine_version(
    tracking_uri: str,
    model_name: str = "wine-classifier",
    *,
    max_iter: int = V1_PARAMS["max_iter"],
    C: float = V1_PARAMS["C"],
    tags: dict[str, str] | None = None,
    experiment: str = "wine",
) -> dict[str, Any]:
    """Train, log and register one wine classifier version; return version, run_id, metrics.

    Defaults give the weaker "v1"; pass ``**V2_PARAMS`` for a strictly better version.
    """
    import mlflow
    import mlflow.sklearn
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X_train, X_test, y_train, y_test = _wine_split()
    model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=max_iter))
    model.fit(X_train, y_train)
    predicted = model.predict(X_test)
    metrics = {
        "accuracy": float(accuracy_score(y_test, predicted)),
        "f1_macro": float(f1_score(y_test, predicted, average="macro")),
    }
    previous_uri = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(tracking_uri)
    try:
        mlflow.set_experiment(experiment)
        with mlflow.start_run() as run:
            mlflow.log_params({"C": C, "max_iter": max_iter, "model": "LogisticRegression"})
            mlflow.log_metrics(metrics)
            with warnings.catch_warnings():
                # The integer class labels make MLflow warn about missing values; harmless.
                warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
                warnings.filterwarnings("ignore", message="Operation with range is deprecated")
                info = mlflow.sklearn.log_model(
                    model, name="model", input_example=X_test.head(3),
                    pip_requirements=_pip_requirements(),  # skips the slow inference subprocess
                )
        mv = mlflow.register_model(info.model_uri, model_name, tags=tags)
    finally:
        mlflow.set_tracking_uri(previous_uri)
    return {"version": str(mv.version), "run_id": run.info.run_id, "metrics": metrics}


def _pip_requirements() -> list[str]:
    from importlib.metadata import version

    return [f"mlflow=={version('mlflow')}", f"scikit-learn=={version('scikit-learn')}",
            f"skops=={version('skops')}"]
