"""Measure the RSS of a real `mlflow server` process tree at N workers, job execution on and off.

    .venv/bin/python bench/mlflow_rss.py [--workers 1 2 4] [--out docs/mlflow_rss.json]

Each run starts `mlflow server` on sqlite (as the rendered pod does, minus PostgreSQL: the RSS is
the Python processes'), waits for /health, sends a few API calls, waits for the process count to
settle, then sums the RSS of the whole tree from /proc. The figures feed gitops_tool/config/sizing.py
and docs/reliability.md.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path


def tree_pids(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += children.get(pid, [])
    return out


def rss_bytes(pids: list[int]) -> int:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str) -> None:
    with urllib.request.urlopen(url, timeout=10) as r:
        r.read()


def measure(workers: int, job_execution: bool, mlflow: str) -> dict:
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        env = os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": str(job_execution).lower(), "HOME": tmp}
        cmd = [mlflow, "server", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
               "--backend-store-uri", f"sqlite:///{tmp}/mlflow.db", "--artifacts-destination", f"{tmp}/art"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        try:
            deadline = time.time() + 300
            while True:
                try:
                    get(f"http://127.0.0.1:{port}/health")
                    break
                except OSError:
                    if time.time() > deadline or proc.poll() is not None:
                        raise RuntimeError(f"mlflow server did not start (rc={proc.poll()})") from None
                    time.sleep(0.5)
            for _ in range(20):
                get(f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=10")
            time.sleep(10)  # job consumers start after the workers
            pids = tree_pids(proc.pid)
            return {"workers": workers, "job_execution": job_execution, "processes": len(pids),
                    "rss_mib": round(rss_bytes(pids) / 2**20)}
        finally:
            os.killpg(proc.pid, 15)
            proc.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--out")
    args = parser.parse_args()
    mlflow = str(Path(sys.executable).with_name("mlflow"))
    rows = []
    for jobs in (False, True):
        for workers in args.workers:
            rows.append(measure(workers, jobs, mlflow))
            print(json.dumps(rows[-1]), flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
