"""The core promotion path against a real `mlflow server` whose backend store is PostgreSQL 15.

Starts a throwaway PostgreSQL cluster (Debian's server binaries under /usr/lib/postgresql/15/bin,
initdb as the `postgres` user when run as root), an `mlflow server --backend-store-uri postgresql://...`
on it, trains and registers the two wine versions, then: promote, already promoted, rollback.
Skips with the reason when PostgreSQL or psycopg2 (MLflow's driver) is missing.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from gitops_tool.mlflow_local import LocalMlflowServer, free_port
from tests.mlflow_harness import register_wine_versions
from tests.promotion_fixtures import WINE, Registry, make_repo, subject_of, trailers_of

pytestmark = pytest.mark.slow

PG_BIN = Path(os.environ.get("GITOPS_TOOL_PG_BIN", "/usr/lib/postgresql/15/bin"))


def _skip_reason() -> str | None:
    if not (PG_BIN / "initdb").is_file() or not (PG_BIN / "pg_ctl").is_file():
        return f"PostgreSQL server binaries not found in {PG_BIN} (apt-get install postgresql-15)"
    try:
        import psycopg2  # noqa: F401
    except ImportError:
        return "psycopg2 is not installed (pip install psycopg2-binary): mlflow needs it for postgresql://"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user for initdb"
    return None


class PostgresCluster:
    """initdb + pg_ctl on a free loopback port; the socket in a private temp dir."""

    def __init__(self):
        # Outside pytest's 0700 tmp tree: the `postgres` user must be able to reach it.
        self.base = Path(tempfile.mkdtemp(prefix="gitops-tool-pg-"))
        self.data = self.base / "data"
        self.sockdir = self.base / "sock"
        self.log = self.base / "postgres.log"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # initdb and postgres refuse to run as root
            self.as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *cmd: str) -> None:
        res = subprocess.run([*self.as_user, *cmd], capture_output=True, text=True, timeout=120)
        if res.returncode != 0:
            raise AssertionError(f"{' '.join(cmd)} failed: {res.stdout}{res.stderr}\n{self._log_tail()}")

    def _log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""

    def start(self) -> PostgresCluster:
        self.sockdir.mkdir()
        if self.as_user:
            pg = pwd.getpwnam("postgres")
            for path in (self.base, self.sockdir):
                os.chown(path, pg.pw_uid, pg.pw_gid)
        self._run(str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust",
                  "--no-sync", "-E", "UTF8")
        self._run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                  "-o", f"-p {self.port} -k {self.sockdir} -h 127.0.0.1 -F", "start")
        self._run(str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "mlflow")
        return self

    def stop(self) -> None:
        subprocess.run([*self.as_user, str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                        "stop"], capture_output=True, timeout=60)
        shutil.rmtree(self.base, ignore_errors=True)

    @property
    def uri(self) -> str:
        # SQLAlchemy 2.1 maps plain postgresql:// to psycopg 3; name the psycopg2 driver explicitly.
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/mlflow"


@pytest.fixture(scope="module")
def pg_registry(tmp_path_factory):
    reason = _skip_reason()
    if reason:
        pytest.skip(reason)
    cluster = PostgresCluster().start()
    server = LocalMlflowServer(tmp_path_factory.mktemp("mlflow-pg"), backend_uri=cluster.uri)
    try:
        server.start(timeout=120)
        reg = Registry(server.url, register_wine_versions(server.url))
        reg.backend_uri = cluster.uri
        yield reg
    finally:
        server.stop()
        cluster.stop()


def test_promote_already_promoted_and_rollback_on_postgres(pg_registry, tmp_path):
    reg = pg_registry
    import psycopg2

    with psycopg2.connect(reg.backend_uri.replace("+psycopg2", "")) as conn, conn.cursor() as cur:  # the registry really lives there
        cur.execute("SELECT count(*) FROM model_versions WHERE name = %s", (WINE,))
        assert cur.fetchone()[0] == 2
    repo = make_repo(tmp_path, reg.url)

    reg.set_alias("candidate", reg.v1)
    first = json.loads(repo.promote(f"{WINE}@candidate", "-o", "json").stdout)
    assert (first["to"], first["pushed"]) == (reg.v1, True) and first["commit"] == repo.remote_head()

    reg.set_alias("candidate", reg.v2)
    start = time.monotonic()
    res = repo.promote(f"{WINE}@candidate")
    assert res.returncode == 0, res.stderr
    assert time.monotonic() - start < 30
    assert subject_of(repo.root) == f"promote(dev): {WINE} {reg.v1} -> {reg.v2} (@candidate)"
    assert trailers_of(repo.root)["Run-Id"] == reg.wine.v2["run_id"]

    again = repo.promote(f"{WINE}@candidate")
    assert again.returncode == 0 and "already promoted" in again.stdout
    assert repo.head() == repo.remote_head()

    back = repo.cli("rollback", WINE, "--env", "dev")
    assert back.returncode == 0, back.stderr
    assert subject_of(repo.root) == f"rollback(dev): {WINE} {reg.v2} -> {reg.v1} (hold)"
    assert repo.head() == repo.remote_head() and repo.remote_count() == 4
    held = repo.promote(f"{WINE}@candidate", "--trigger", "reconcile")
    assert held.returncode == 0 and "held: rollback" in held.stdout
