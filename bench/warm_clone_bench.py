"""Benchmark: a fresh depth-1 clone per job versus the receiver's warm clone refresh, same run.

    .venv/bin/python bench/warm_clone_bench.py              # 20 of each, interleaved

The reference platform (`gitops-tool init` starter, generated) in a bare remote on disk. Each
iteration first pushes one new commit to the remote from another clone (as a promotion would), then
times, interleaved: `GitRepo.clone(depth=1)` into a new directory (what the receiver did per job)
and `ClonePool.checkout()` of the warm clone (fetch, hard reset, `status --porcelain --ignored`,
rev-parse, `rev-list --objects --no-walk --missing=error`). Medians and the ratio are printed with
the load average, because the machine is shared.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gitops_tool.gitrepo.repo import GitRepo  # noqa: E402
from gitops_tool.gitrepo.warm import ClonePool  # noqa: E402

IDENTITY = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}


def git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env={**os.environ, **IDENTITY})


def main() -> int:
    from gitops_tool.project import init_project

    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    tmp = Path(tempfile.mkdtemp(prefix="warm-clone-bench-"))
    try:
        origin, writer = tmp / "origin.git", tmp / "writer"
        git(tmp, "init", "-q", "--bare", "-b", "main", str(origin))
        init_project(writer, repo_url=str(origin), prod_approval="direct")  # a bare remote: no pull requests
        git(writer, "init", "-q", "-b", "main")
        git(writer, "add", "-A")
        git(writer, "commit", "-q", "-m", "platform")
        git(writer, "remote", "add", "origin", str(origin))
        git(writer, "push", "-q", "origin", "main")
        pool = ClonePool(str(origin), "main", tmp / "pool")
        with pool.checkout():
            pass
        fresh, warm = [], []
        for i in range(runs):
            (writer / "environments" / "prod" / "release" / "bench.txt").write_text(f"{i}\n")
            git(writer, "add", "-A")
            git(writer, "commit", "-q", "-m", f"move {i}")
            git(writer, "push", "-q", "origin", "main")
            start = time.perf_counter()
            GitRepo.clone(str(origin), "main", tmp / f"fresh-{i}", depth=1)
            fresh.append(time.perf_counter() - start)
            shutil.rmtree(tmp / f"fresh-{i}")
            start = time.perf_counter()
            with pool.checkout():
                pass
            warm.append(time.perf_counter() - start)
        load = os.getloadavg()
        f, w = statistics.median(fresh), statistics.median(warm)
        print("command: .venv/bin/python bench/warm_clone_bench.py " + " ".join(sys.argv[1:]))
        print(f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}; {runs} iterations, interleaved")
        print(f"fresh depth-1 clone        median {f * 1000:.1f} ms  (min {min(fresh) * 1000:.1f}, max {max(fresh) * 1000:.1f})")
        print(f"warm refresh + checks      median {w * 1000:.1f} ms  (min {min(warm) * 1000:.1f}, max {max(warm) * 1000:.1f})")
        print(f"warm / fresh               {w / f:.2f}  (pool: {pool.stats.fresh} fresh, {pool.stats.warm} warm, "
              f"{len(pool.stats.discarded)} discarded)")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
