"""Run tests/test_faults.py and print the fault table's figures; optionally measure the registry
client's default worst case (10 s timeout, 3 retries) against a registry that never answers in time.

    .venv/bin/python bench/faults_table.py                 # the fault tests, figures as a table
    .venv/bin/python bench/faults_table.py --default-timeout   # + the ~45 s default-timeout case

Stand-in (as in the tests): the slow registry is a loopback http.server that sleeps before answering.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def default_timeout_worst_case() -> dict:
    from gitops_tool.project import init_project
    from tests.mlflow_harness import RecordingServer

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "platform"
        init_project(root)
        for args in (["init", "-q", "-b", "main"], ["add", "-A"],
                     ["-c", "user.name=b", "-c", "user.email=b@b", "commit", "-qm", "init"]):
            subprocess.run(["git", *args], cwd=root, check=True)

        def slow(rec):
            time.sleep(11)
            return 200, {"Content-Type": "application/json"}, b"{}"

        env = {k: v for k, v in os.environ.items() if k != "GITOPS_TOOL_REGISTRY_TIMEOUT"}
        with RecordingServer(slow) as fake:
            t0 = time.monotonic()
            res = subprocess.run([sys.executable, "-m", "gitops_tool.cli.main", "promote", "wine-classifier@candidate",
                                  "--tracking-uri", fake.url], cwd=root, env=env, capture_output=True, text=True)
            elapsed = time.monotonic() - t0
            attempts = len(fake.requests)
    return {"exit": res.returncode, "seconds": round(elapsed, 2), "attempts": attempts,
            "message": res.stderr.strip().splitlines()[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--default-timeout", action="store_true", help="also measure the 10 s default (~45 s)")
    args = parser.parse_args()
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        out, junit = Path(tmp) / "figures.json", Path(tmp) / "junit.xml"
        env = dict(os.environ, GITOPS_TOOL_FAULT_FIGURES=str(out))
        t0 = time.monotonic()
        res = subprocess.run([sys.executable, "-m", "pytest", "tests/test_faults.py", "-q", "-p", "no:cacheprovider",
                              f"--junitxml={junit}"], cwd=ROOT, env=env, capture_output=True, text=True)
        total = time.monotonic() - t0
        print(res.stdout.strip().splitlines()[-1] if res.stdout.strip() else res.stderr[-2000:])
        if out.exists():
            figures = json.loads(out.read_text())
    if args.default_timeout:
        figures["registry_slow_default_timeout"] = default_timeout_worst_case()
    print(f"date: {date.today().isoformat()}  module wall time: {total:.1f}s  exit: {res.returncode}")
    width = max(map(len, figures), default=10)
    for name, values in sorted(figures.items()):
        print(f"{name:<{width}}  " + ", ".join(f"{k}={v}" for k, v in values.items()))
    return res.returncode


if __name__ == "__main__":
    sys.exit(main())
