"""Benchmark: `gitops-tool status` on generated platforms (N environments x M models) against a floor.

    .venv/bin/python bench/status_bench.py                  # 30x10, 100x10, 100x50; 5 runs each
    .venv/bin/python bench/status_bench.py --runs 3 --shapes 100x50

Starts one real `mlflow server` (sqlite) with M registered models (model000.., one version each,
the aliases candidate/challenger/champion on it), builds each platform with bench/bigplatform.py
(the generated tree, one release per model and mapped environment, pushed to a bare remote) and times:
  * status: `python -m gitops_tool.cli.main status --tracking-uri URL` in the checkout, as a
    subprocess: fetch of the remote tip, a private worktree, the release files, one registry GET per
    model, the table;
  * floor: one Python subprocess that does what any status must: `git fetch`, one registry GET per
    model (requests, one keep-alive session) and reading every release file once;
  * collect: promotion.status.collect in this process without the registry (the release-reading
    part alone), to show it grows with files, not with environments x models.
Prints medians, ratios and the load average.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bigplatform import make_platform, register_models  # noqa: E402

FLOOR = r"""
import pathlib, subprocess, sys, requests
uri, root, models = sys.argv[1], pathlib.Path(sys.argv[2]), int(sys.argv[3])
subprocess.run(["git", "fetch", "-q", "origin", "main"], cwd=root, check=True)
with requests.Session() as s:
    for j in range(models):
        r = s.get(f"{uri}/api/2.0/mlflow/registered-models/get", params={"name": f"model{j:03d}"}, timeout=10)
        r.raise_for_status()
for path in root.glob("environments/*/release/*.yaml"):
    path.read_bytes()
"""


CPU: dict[str, list[float]] = {}  # label -> CPU seconds (user+sys of the process and its children)


def _cpu() -> float:
    import resource

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


def _timed(cmd: list[str], cwd: Path, label: str = "") -> float:
    start, cpu = time.perf_counter(), _cpu()
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    CPU.setdefault(label, []).append(_cpu() - cpu)
    if res.returncode != 0:
        raise SystemExit(f"failed ({res.returncode}): {cmd}\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    return elapsed


def _collect_seconds(root: Path, repeats: int) -> float:
    from gitops_tool.config import load_config
    from gitops_tool.promotion.status import collect

    cfg = load_config(root / "gitops.yaml")
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        rows, _ = collect(cfg, None)
        times.append(time.perf_counter() - start)
    assert len(rows) == len(cfg.environments) * len(cfg.models), len(rows)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--shapes", default="30x10,100x10,100x50")
    args = parser.parse_args()
    shapes = [tuple(int(x) for x in s.split("x")) for s in args.shapes.split(",")]

    from gitops_tool.mlflow_local import LocalMlflowServer

    with tempfile.TemporaryDirectory(prefix="status-bench-") as tmp_name:
        tmp = Path(tmp_name)
        server = LocalMlflowServer(tmp / "mlflow").start(timeout=180)
        try:
            register_models(server.url, max(m for _, m in shapes))
            print(f"mlflow {server.url}: {max(m for _, m in shapes)} registered models")
            results = []
            for envs, models in shapes:
                root = make_platform(tmp / f"p{envs}x{models}", envs=envs, models=models)
                files = len(list(root.glob("environments/*/release/*.yaml")))
                status_cmd = [sys.executable, "-m", "gitops_tool.cli.main", "status", "--tracking-uri", server.url]
                floor_cmd = [sys.executable, "-c", FLOOR, server.url, str(root), str(models)]
                _timed(status_cmd, root)  # warm the page cache and the registry's
                st, fl = [], []
                for _ in range(args.runs):
                    st.append(_timed(status_cmd, root, f"status {envs}x{models}"))
                    fl.append(_timed(floor_cmd, root, f"floor {envs}x{models}"))
                collect_s = _collect_seconds(root, 3)
                results.append((envs, models, files, statistics.median(st), statistics.median(fl), collect_s))
                print(f"{envs}x{models}: status {statistics.median(st):.3f} s, floor {statistics.median(fl):.3f} s, "
                      f"collect (no registry) {collect_s:.3f} s, {files} release files", flush=True)
        finally:
            server.stop()
    print(f"\nload average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}, "
          f"{args.runs} runs each")
    print("| environments x models | release files | status median | floor median | ratio | CPU status / floor "
          "| collect (no registry) |")
    print("|---|---|---|---|---|---|---|")
    for envs, models, files, st, fl, col in results:
        cs, cf = (statistics.median(CPU[f"{k} {envs}x{models}"]) for k in ("status", "floor"))
        print(f"| {envs} x {models} | {files} | {st:.3f} s | {fl:.3f} s | {st / fl:.1f}x | {cs:.3f} s / {cf:.3f} s "
              f"| {col:.3f} s |")


if __name__ == "__main__":
    main()
