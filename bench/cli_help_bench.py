"""Benchmark: `gitops-tool --help` wall time against the floor of starting the same interpreter.

    .venv/bin/python bench/cli_help_bench.py [--repeats 20]

Goal: median under 0.3 s. The floor is `python -c pass` in the same run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def _median(cmd: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    exe = shutil.which("gitops-tool", path=str(Path(sys.executable).parent)) or "gitops-tool"
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    floor = _median([sys.executable, "-c", "pass"], args.repeats)
    help_s = _median([exe, "--help"], args.repeats)
    version_s = _median([exe, "--version"], args.repeats)
    print(f"python -c pass {floor:.3f}s | gitops-tool --help {help_s:.3f}s | --version {version_s:.3f}s | "
          f"help/floor {help_s / floor:.2f} (median of {args.repeats})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
