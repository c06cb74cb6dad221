"""Benchmark: a no-op `gitops-tool generate` on a generated platform (N environments x M models).

    .venv/bin/python bench/generate_bench.py                # 100x50, 5 runs
    .venv/bin/python bench/generate_bench.py --shape 30x10 --runs 3

Builds the platform with bench/bigplatform.py, runs `generate` once (fills the memo), then times,
interleaved:
  * generate: `python -m gitops_tool.cli.main generate` in the checkout, nothing to change;
  * generate, memo off: the same with GITOPS_TOOL_CACHE=off (every file dumped with ruamel);
  * floor: one Python process that reads gitops.yaml and every file under base/, environments/
    and argocd/ once (what any "is the tree up to date" check must at least do).
Each run's tree is checked unchanged (git status). Prints medians, ratios and the load average.
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

from bench.bigplatform import make_platform  # noqa: E402

FLOOR = r"""
import pathlib, sys
root = pathlib.Path(sys.argv[1])
(root / "gitops.yaml").read_bytes()
for top in ("base", "environments", "argocd"):
    for p in (root / top).rglob("*"):
        if p.is_file():
            p.read_bytes()
"""


CPU: dict[str, list[float]] = {}  # label -> CPU seconds (user+sys of the process and its children)


def _cpu() -> float:
    import resource

    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return kids.ru_utime + kids.ru_stime


def _timed(cmd: list[str], cwd: Path, env: dict, label: str = "") -> float:
    start, cpu = time.perf_counter(), _cpu()
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    CPU.setdefault(label, []).append(_cpu() - cpu)
    if res.returncode != 0:
        raise SystemExit(f"failed ({res.returncode}): {cmd}\n{res.stdout[-2000:]}\n{res.stderr[-2000:]}")
    dirty = subprocess.run(["git", "status", "--porcelain"], cwd=cwd, capture_output=True, text=True).stdout
    if dirty.strip():
        raise SystemExit(f"a no-op generate changed the tree:\n{dirty[:2000]}")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--shape", default="100x50")
    args = parser.parse_args()
    envs, models = (int(x) for x in args.shape.split("x"))
    with tempfile.TemporaryDirectory(prefix="generate-bench-") as tmp_name:
        tmp = Path(tmp_name)
        root = make_platform(tmp / "p", envs=envs, models=models)
        env = {**os.environ, "GITOPS_TOOL_CACHE_DIR": str(tmp / "cache")}
        off = {**env, "GITOPS_TOOL_CACHE": "off"}
        gen = [sys.executable, "-m", "gitops_tool.cli.main", "generate"]
        floor = [sys.executable, "-c", FLOOR, str(root)]
        _timed(gen, root, env)  # fills the memo
        files = sum(1 for top in ("base", "environments", "argocd") for p in (root / top).rglob("*") if p.is_file())
        g, o, f = [], [], []
        for _ in range(args.runs):
            g.append(_timed(gen, root, env, "generate"))
            f.append(_timed(floor, root, env, "floor"))
            o.append(_timed(gen, root, off, "off"))
    g, o, f = statistics.median(g), statistics.median(o), statistics.median(f)
    print(f"platform {envs} environments x {models} models, {files} files; {args.runs} runs each, interleaved")
    print(f"command: {' '.join(gen)}   (cwd: the platform checkout; nothing to change)")
    print(f"generate median {g:.3f} s, memo off {o:.3f} s, floor (read every file) {f:.3f} s")
    print(f"ratio generate/floor {g / f:.1f}x, memo off {o / f:.1f}x; goal generate <= 0.5 s: "
          f"{'yes' if g <= 0.5 else 'NO'}")
    print("CPU (user+sys, with children) medians: " + ", ".join(
        f"{k or 'setup'} {statistics.median(v):.3f} s" for k, v in CPU.items() if k))
    print("load average %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
