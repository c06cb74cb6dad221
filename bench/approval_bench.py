"""Benchmark: what a pull request costs a promotion, against the direct promotion as the floor.

    .venv/bin/python bench/approval_bench.py              # 10 runs each
    .venv/bin/python bench/approval_bench.py --runs 20

Starts a local `mlflow server` (sqlite), registers two wine versions, makes a project pushed to a bare
remote whose prod has `approval: pull_request` (repo.github_repository set; GitHub's REST API is the
loopback stand-in of tests/github_standin.py, since GitHub cannot run here), then alternates:
  * pull request: `promote wine-classifier/<v> --env prod` as a subprocess, alternating versions, so every
    run looks up the open PR, commits on the remote's tip, fetches and force-pushes the PR branch, and
    creates or updates the PR;
  * floor: `promote wine-classifier/<v> --env dev` (approval: direct), alternating versions, so every run
    commits and pushes to main. Same gates, edit and kustomize validation.
Prints the medians and the ratio. The stand-in answers in about a millisecond: against api.github.com
add its round trips (two calls per promotion).
"""

from __future__ import annotations

import argparse
import os
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.promote_bench import IDENTITY, _git, _timed  # noqa: E402
from gitops_tool.gitrepo import init_bare_remote  # noqa: E402
from gitops_tool.mlflow_local import V2_PARAMS, LocalMlflowServer, train_wine_version  # noqa: E402
from gitops_tool.project import generate, init_project  # noqa: E402
from tests.github_standin import GitHubStandIn  # noqa: E402
from tests.mlflow_harness import RecordingServer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="approval-bench-") as tmp_name, \
            RecordingServer(GitHubStandIn("acme/platform")) as github:
        tmp = Path(tmp_name)
        server = LocalMlflowServer(tmp / "mlflow").start(timeout=120)
        try:
            v1 = train_wine_version(server.url)["version"]
            v2 = train_wine_version(server.url, **V2_PARAMS)["version"]
            remote = init_bare_remote(tmp / "remote.git")
            repo = tmp / "platform"
            init_project(repo, repo_url=str(remote), prod_approval="direct")
            config = repo / "gitops.yaml"
            text = config.read_text().replace("      no_worse_than_deployed: [accuracy]\n", "")
            text = text.replace("      require_previous_stage: {prod: staging}\n", "")
            text = text.replace("    approval: direct\n", "    approval: pull_request\n")
            config.write_text(text.replace("  remote: origin\n", "  remote: origin\n  github_repository: acme/platform\n"))
            generate(config)
            for git_args in (("init", "-q", "-b", "main"), ("add", "-A"), ("commit", "-q", "-m", "initial"),
                             ("remote", "add", "origin", str(remote)), ("push", "-q", "origin", "main")):
                _git(repo, *git_args)

            env = {**os.environ, **IDENTITY, "MLFLOW_TRACKING_URI": server.url, "GITHUB_TOKEN": "bench",
                   "GITHUB_API_URL": github.url}
            env.pop("GITHUB_STEP_SUMMARY", None)
            cmd = lambda v, e: [sys.executable, "-m", "gitops_tool.cli.main", "promote",  # noqa: E731
                                f"wine-classifier/{v}", "--env", e]
            _timed(cmd(v1, "prod"), repo, env)  # warm-up: the first PR and the first dev commit
            _timed(cmd(v1, "dev"), repo, env)
            pr_times, direct_times = [], []
            for i in range(args.runs):
                version = v2 if i % 2 == 0 else v1
                pr_times.append(_timed(cmd(version, "prod"), repo, env))
                direct_times.append(_timed(cmd(version, "dev"), repo, env))
            calls = len(github.requests)
        finally:
            server.stop()

    p, d = statistics.median(pr_times), statistics.median(direct_times)
    print(f"pull request: {shlex.join(cmd('<v>', 'prod'))}   (approval: pull_request; GitHub API stand-in)")
    print(f"floor:        {shlex.join(cmd('<v>', 'dev'))}    (approval: direct)")
    print(f"runs: {args.runs} each, interleaved, alternating versions {v1} <-> {v2}; GitHub API calls: {calls}")
    print(f"pull request median {p:.3f} s  (min {min(pr_times):.3f}, max {max(pr_times):.3f})")
    print(f"direct       median {d:.3f} s  (min {min(direct_times):.3f}, max {max(direct_times):.3f})")
    print(f"ratio pull request/direct {p / d:.2f}x, difference {p - d:+.3f} s")
    print(f"load average: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
