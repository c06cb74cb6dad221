"""Benchmark: wall time of `gitops-tool promote` against the floor of what any promotion must do.

    .venv/bin/python bench/promote_bench.py              # 10 runs each
    .venv/bin/python bench/promote_bench.py --runs 20

Starts a local `mlflow server` (sqlite), registers two wine versions, makes a project pushed to a
bare remote, then alternates:
  * promote: `python -m gitops_tool.cli.main promote wine-classifier/<v> --env dev` as a subprocess,
    alternating between the two versions so every run commits and pushes (metrics gate, edit,
    kustomize validation included; the no_worse_than_deployed gate is dropped so v2 -> v1 is allowed);
  * floor: a separate Python subprocess that does one registry REST call (requests GET of the alias),
    (its commits touch environments/staging/release/floor.txt: no input of dev's overlay, so they do
    not void dev's validated-render cache entry as a commit to base/ or to dev would),
    one git fetch and one git commit + push (subprocess git) — interpreter start, one HTTP round
    trip, the fetch that building on the remote's tip needs, one commit.
  * promote with GITOPS_TOOL_CACHE=off: the same with every cache off (always rendering and
    validating, parsing and schema-checking gitops.yaml).
The validated-render cache lives in a per-run GITOPS_TOOL_CACHE_DIR. Prints the medians, the ratios,
the exact commands and the load average. Goal (issue 15): promote median <= 2.5x the floor.
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gitops_tool.gitrepo import init_bare_remote  # noqa: E402
from gitops_tool.mlflow_local import LocalMlflowServer, train_wine_version, V2_PARAMS  # noqa: E402
from gitops_tool.project import init_project  # noqa: E402

FLOOR = r"""
import subprocess, sys, requests
uri, repo, n = sys.argv[1], sys.argv[2], sys.argv[3]
r = requests.get(f"{uri}/api/2.0/mlflow/registered-models/alias",
                 params={"name": "wine-classifier", "alias": "candidate"}, timeout=10)
r.raise_for_status()
path = f"{repo}/environments/staging/release/floor.txt"  # not an input of dev's overlay
open(path, "w").write(r.json()["model_version"]["version"] + " " + n + "\n")
git = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)
git("fetch", "-q", "origin", "main")  # a promotion builds on the remote's tip: it must fetch first
git("add", "--", path)
git("commit", "-q", "-m", f"floor {n}", "--", path)
git("push", "-q", "origin", "HEAD:refs/heads/main")
"""

IDENTITY = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}


def _git(cwd: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, env={**os.environ, **IDENTITY})


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if res.returncode != 0:
        raise SystemExit(f"failed ({res.returncode}): {shlex.join(cmd)}\n{res.stdout}\n{res.stderr}")
    return elapsed


def _processes(cmd: list[str], cwd: Path, env: dict[str, str], trace: Path) -> str:
    """How many programs one run executes (the interpreter included), by strace; '-' without strace."""
    import shutil

    if not shutil.which("strace"):
        return "-"
    _timed(["strace", "-f", "-qq", "-e", "trace=execve", "-e", "signal=none", "-o", str(trace), *cmd], cwd, env)
    import collections
    import re

    names: collections.Counter = collections.Counter()
    for line in trace.read_text().splitlines():
        match = re.search(r'execve\("([^"]+)", \[(.*?)\]', line)
        if not match or "= 0" not in line:
            continue
        name, argv = Path(match[1]).name, re.findall(r'"((?:[^"\\]|\\.)*)"', match[2])[1:]
        while name == "git" and argv and argv[0].startswith("-"):
            argv = argv[2:] if argv[0] in ("-C", "-c") else argv[1:]
        names[f"git {argv[0]}" if name == "git" and argv else name] += 1
    return f"{sum(names.values())} ({', '.join(f'{k} {v}' for k, v in names.most_common())})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="promote-bench-") as tmp_name:
        tmp = Path(tmp_name)
        server = LocalMlflowServer(tmp / "mlflow").start(timeout=120)
        try:
            v1 = train_wine_version(server.url)["version"]
            v2 = train_wine_version(server.url, **V2_PARAMS)["version"]
            import requests

            requests.post(f"{server.url}/api/2.0/mlflow/registered-models/alias", timeout=10,
                          json={"name": "wine-classifier", "alias": "candidate", "version": v1}).raise_for_status()

            remote = init_bare_remote(tmp / "remote.git")
            repo = tmp / "platform"
            init_project(repo, repo_url=str(remote), prod_approval="direct")  # a bare remote: no pull requests
            # Going back to the weaker v1 every other run would trip no_worse_than_deployed: drop that
            # one gate (the metrics gate still reads the run's metrics from the registry).
            config = repo / "gitops.yaml"
            config.write_text(config.read_text().replace("      no_worse_than_deployed: [accuracy]\n", ""))
            _git(repo, "init", "-q", "-b", "main")
            _git(repo, "add", "-A")
            _git(repo, "commit", "-q", "-m", "initial")
            _git(repo, "remote", "add", "origin", str(remote))
            _git(repo, "push", "-q", "origin", "main")

            env = {**os.environ, **IDENTITY, "MLFLOW_TRACKING_URI": server.url,
                   "GITOPS_TOOL_CACHE_DIR": str(tmp / "cache")}  # the validated-render cache, per run
            env.pop("GITHUB_STEP_SUMMARY", None)
            uncached = {**env, "GITOPS_TOOL_CACHE": "off"}
            promote_cmd = lambda v: [sys.executable, "-m", "gitops_tool.cli.main", "promote",  # noqa: E731
                                     f"wine-classifier/{v}", "--env", "dev"]
            floor_cmd = lambda n: [sys.executable, "-c", FLOOR, server.url, str(repo), str(n)]  # noqa: E731
            # Warm-up: first promotion into dev (adds the model), first floor commit, page cache.
            _timed(promote_cmd(v1), repo, env)
            _timed(floor_cmd(0), repo, env)

            promote_times, uncached_times, floor_times = [], [], []
            for i in range(args.runs):
                promote_times.append(_timed(promote_cmd(v2 if i % 2 == 0 else v1), repo, env))
                floor_times.append(_timed(floor_cmd(2 * i + 1), repo, env))
                uncached_times.append(_timed(promote_cmd(v1 if i % 2 == 0 else v2), repo, uncached))
                floor_times.append(_timed(floor_cmd(2 * i + 2), repo, env))
            deployed = v1 if (args.runs - 1) % 2 == 0 else v2  # what the last uncached run promoted
            other = v2 if deployed == v1 else v1
            processes = {name: _processes(promote_cmd(version), repo, e, tmp / f"trace-{i}")
                         for i, (name, e, version) in enumerate((("cache on", env, other),
                                                                 ("cache off", uncached, deployed)))}
            processes["floor"] = _processes(floor_cmd(9999), repo, env, tmp / "trace-floor")
        finally:
            server.stop()

    p, f = statistics.median(promote_times), statistics.median(floor_times)
    u = statistics.median(uncached_times)
    print(f"promote command: {shlex.join(promote_cmd('<v>'))}   (cwd: the project checkout, "
          f"MLFLOW_TRACKING_URI=<local mlflow>)")
    print(f"floor command:   {shlex.join([sys.executable, '-c', '<FLOOR script>', '<uri>', '<repo>', '<n>'])}")
    print(f"runs: {args.runs} each, interleaved; alternating versions {v1} <-> {v2}, every promote commits")
    print(f"promote median {p:.3f} s  (min {min(promote_times):.3f}, max {max(promote_times):.3f})")
    print(f"promote, render cache off (GITOPS_TOOL_CACHE=off) median {u:.3f} s  "
          f"(min {min(uncached_times):.3f}, max {max(uncached_times):.3f})")
    print(f"floor   median {f:.3f} s  (min {min(floor_times):.3f}, max {max(floor_times):.3f})")
    print(f"ratio promote/floor {p / f:.2f}x (cache off {u / f:.2f}x)   goal: <= 2.5x floor: "
          f"{'yes' if p / f <= 2.5 else 'NO'}")
    print("processes per promote (strace -f execve): " + ", ".join(f"{k} {v}" for k, v in processes.items()))
    print("load average %.2f %.2f %.2f" % os.getloadavg())


if __name__ == "__main__":
    main()
