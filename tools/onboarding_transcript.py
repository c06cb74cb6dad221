"""Follow the README's "Getting started in your cluster" in a fresh directory and print a transcript.

    .venv/bin/python tools/onboarding_transcript.py > docs/onboarding.md

Steps that need a cluster, Docker or GitHub (2, 5, 6) cannot run on this project's machines and
are listed as such; a local `mlflow server` stands in for the in-cluster MLflow reached through
`kubectl port-forward`, and a bare repository on disk for the team's GitHub remote.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gitops_tool.mlflow_local import LocalMlflowServer, train_wine_version  # noqa: E402

TOOL = [sys.executable, "-m", "gitops_tool.cli.main"]
IDENTITY = {"GIT_AUTHOR_NAME": "new user", "GIT_AUTHOR_EMAIL": "user@localhost",
            "GIT_COMMITTER_NAME": "new user", "GIT_COMMITTER_EMAIL": "user@localhost"}


def run(cmd: list[str], cwd: Path, env: dict, shown: str | None = None) -> int:
    show = shown or " ".join(shlex.quote(c) for c in (["gitops-tool", *cmd[3:]] if cmd[:3] == TOOL else cmd))
    res = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    print(f"$ {show}")
    for line in (res.stdout + res.stderr).rstrip().splitlines():
        print(f"    {line}")
    print(f"    [exit {res.returncode}]\n")
    return res.returncode


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="onboarding-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")} | IDENTITY
    print("# Onboarding, tried as a new user would\n")
    print("Produced by `.venv/bin/python tools/onboarding_transcript.py` in a fresh directory "
          "(paths shortened to `$W`). Steps 2, 5 and 6 need a cluster, Docker and GitHub, none of "
          "which exist on this project's machines; they are not shown. A local `mlflow server` stands "
          "in for the platform's MLflow behind `kubectl port-forward`, and a bare repository on disk "
          "for the team's remote. The wheel install of step 1 is tested in tests/test_release.py.\n")
    print("```")
    run([*TOOL, "--version"], work, env)
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(work / "origin.git")], check=True)
    run([*TOOL, "init", "my-platform", "--repo-url", str(work / "origin.git"), "--registry", "ghcr.io/acme",
         "--host", "acme.io", "--prod-cluster", "https://prod.k8s.acme.io"], work, env)
    repo = work / "my-platform"
    run([*TOOL, "validate", "--strict"], repo, env)
    for args in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-qm", "MLflow platform"],
                 ["remote", "add", "origin", str(work / "origin.git")], ["push", "-q", "-u", "origin", "main"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)
    print("$ git init -b main && git add -A && git commit -m 'MLflow platform' && git push -u origin main\n")
    run([*TOOL, "secrets", "list"], repo, env)
    server = LocalMlflowServer(work / "mlflow").start(timeout=180)
    try:
        env["MLFLOW_TRACKING_URI"] = server.url
        print(f"$ export MLFLOW_TRACKING_URI={server.url}   # the port-forward to the platform's MLflow\n")
        config = repo / "gitops.yaml"
        config.write_text(config.read_text().rstrip("\n") + (
            "\n  wine-quality:\n    mode: image\n    image_repository: ghcr.io/acme/wine-quality\n"
            "    image_template: \"{repository}:v{version}\"\n"
            "    aliases: {candidate: dev, challenger: staging, champion: prod}\n"
            "    gates:\n      metrics: [\"accuracy >= 0.85\"]\n      require_previous_stage: {prod: staging}\n"))
        print("# step 9: wine-quality added under models: in gitops.yaml")
        run([*TOOL, "generate"], repo, env)
        # A slip a new user makes: `commit -a` leaves generate's new files out of the push.
        subprocess.run(["git", "commit", "-qam", "serve wine-quality"], cwd=repo, env=env, check=True)
        subprocess.run(["git", "push", "-q"], cwd=repo, env=env, check=True)
        print("$ git commit -am 'serve wine-quality' && git push   # new files left out\n")
        import contextlib
        import io

        with contextlib.redirect_stdout(io.StringIO()):
            version = train_wine_version(server.url, "wine-quality")["version"]
        print(f"# trained and registered wine-quality version {version} (mlflow.sklearn.log_model, "
              "registered_model_name=...)\n")
        from gitops_tool.registry import RegistryClient

        with RegistryClient(server.url) as client:
            for alias in ("candidate", "challenger", "champion"):
                client.set_alias("wine-quality", alias, version)
        print(f"# @candidate, @challenger and @champion set to {version} in the registry\n")
        run([*TOOL, "promote", "wine-quality@candidate"], repo, env)
        for args in (["add", "-A"], ["commit", "-qm", "serve wine-quality: generated files"], ["push", "-q"]):
            subprocess.run(["git", *args], cwd=repo, env=env, check=True)
        print("$ git add -A && git commit -m 'serve wine-quality: generated files' && git push\n")
        run([*TOOL, "promote", "wine-quality@champion"], repo, env)
        for alias in ("candidate", "challenger", "champion"):
            run([*TOOL, "promote", f"wine-quality@{alias}"], repo, env)
        run([*TOOL, "status"], repo, env)
        run([*TOOL, "history", "wine-quality"], repo, env)
    finally:
        server.stop()
    print("```")
    return 0


if __name__ == "__main__":
    sys.exit(main())
