"""The demo's story: train, register, promote by webhook twice, roll back, release, inspect."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import requests

from gitops_tool.demo.runner import Processes, Progress
from gitops_tool.errors import GitopsError

MODEL = "wine-classifier"
TOTAL_STEPS = 8
CLI = [sys.executable, "-m", "gitops_tool.cli.main"]


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def _cli(progress: Progress, *args: str, cwd: Path, env: dict, show: bool = True) -> str:
    progress.say(f"      $ gitops-tool {' '.join(args)}")
    result = subprocess.run([*CLI, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    if show:
        for line in (result.stdout + result.stderr).rstrip().splitlines():
            progress.say(f"        {line}")
    if result.returncode != 0:
        raise GitopsError(f"`gitops-tool {' '.join(args)}` exited {result.returncode}: {result.stderr.strip()}")
    return result.stdout


class Demo:
    def __init__(self, workdir: Path, *, serve: bool, quiet: bool):
        self.dir = workdir
        self.serve = serve
        self.progress = Progress(TOTAL_STEPS + (1 if serve else 0), quiet=quiet)
        self.procs = Processes()
        self.summary: dict[str, Any] = {"latencies_s": [], "versions": {}}
        self.env = dict(os.environ)
        self.env["KUBECONFIG"] = os.devnull  # no cluster here: the Argo CD refresh step says so and skips

    # -- the story -------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        p = self.progress
        with p.step("Start a local MLflow server (sqlite, local artifacts, webhooks to loopback allowed)"):
            self._start_mlflow()
        with p.step("Train the wine classifier on sklearn's load_wine and register wine-classifier v1"):
            self._train("v1")
        with p.step("Create the GitOps repo (gitops-tool init) with a bare origin; start and register the receiver"):
            self._create_repo()
            self._start_receiver()
        with p.step("Point wine-classifier@champion at v1: the receiver promotes it to prod"):
            self._move_alias("1")
        with p.step("Train v2 (better metrics); move @candidate (dev), then @champion (prod) to it"):
            self._train("v2")
            self._move_alias("2", alias="candidate")
            self._move_alias("2")
        with p.step("Roll prod back to v1 (a commit plus a hold), release it, and let reconcile catch up"):
            self._rollback_and_release()
        with p.step("Validate the promoted environment, then print status and history"):
            self._inspect()
        if self.serve:
            with p.step("Load the promoted model with mlflow.pyfunc and answer a prediction"):
                self._predict()
        with p.step("Summary"):
            self._summarise()
        return self.summary

    # -- steps -------------------------------------------------------------------
    def _start_mlflow(self) -> None:
        from gitops_tool.mlflow_local import LocalMlflowServer

        server = LocalMlflowServer(self.dir / "mlflow")
        (self.dir / "mlflow").mkdir(parents=True, exist_ok=True)
        self.procs.on_stop(server.stop)
        server.start(timeout=120)
        self.mlflow = server
        self.env["MLFLOW_TRACKING_URI"] = server.url
        self.progress.say(f"      MLflow at {server.url} (log: {server.log_path})")

    def _train(self, label: str) -> None:
        from gitops_tool.mlflow_local import V1_PARAMS, V2_PARAMS, train_wine_version

        params = V1_PARAMS if label == "v1" else V2_PARAMS
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            info = train_wine_version(self.mlflow.url, MODEL, **params)
        self.summary["versions"][info["version"]] = info
        self.progress.say(f"      registered {MODEL} version {info['version']}: "
                          f"accuracy {info['metrics']['accuracy']:.3f}, run {info['run_id'][:12]}")

    def _create_repo(self) -> None:
        self.origin = self.dir / "origin.git"
        self.repo = self.dir / "gitops"
        _git("init", "--quiet", "--bare", "-b", "main", str(self.origin), cwd=self.dir)
        # The demo's origin is a bare repository on disk, not GitHub, so there is no pull request to open:
        # prod takes promotions directly here (a real platform reviews them; see docs/approval.md).
        _cli(self.progress, "init", str(self.repo), "--repo-url", str(self.origin), "--prod-approval", "direct",
             cwd=self.dir, env=self.env, show=False)
        config = self.repo / "gitops.yaml"
        text = config.read_text().replace("http://127.0.0.1:5000", self.mlflow.url)
        # One alias, one environment, so the story stays short: no staging-first gate here.
        text = text.replace("      require_previous_stage: {prod: staging}\n", "")
        # dev scales to zero between uses (KServe Serverless): what a dev environment usually wants.
        text = text.replace("    serving: {mode: Standard, min_replicas: 1, max_replicas: 2}\n",
                            "    serving: {mode: Serverless, min_replicas: 0, max_replicas: 2}\n", 1)
        config.write_text(text)
        _cli(self.progress, "generate", cwd=self.repo, env=self.env, show=False)
        for args in (("init", "--quiet", "-b", "main"), ("add", "-A"),
                     ("-c", "user.name=gitops-tool demo", "-c", "user.email=demo@localhost", "commit", "--quiet",
                      "-m", "Platform generated by gitops-tool init"),
                     ("remote", "add", "origin", str(self.origin)), ("push", "--quiet", "-u", "origin", "main")):
            _git(*args, cwd=self.repo)
        self.progress.say(f"      repo {self.repo} -> origin {self.origin}")

    def _start_receiver(self) -> None:
        from gitops_tool.mlflow_local import free_port
        from gitops_tool.registry import RegistryClient
        from gitops_tool.webhook.register import register_webhook

        secret_file = self.dir / "webhook-secret"
        secret_file.write_text(secrets.token_urlsafe(32))
        secret_file.chmod(0o600)
        port = free_port()
        self.receiver_url = f"http://127.0.0.1:{port}"
        self.procs.spawn([*CLI, "webhook", "serve", "--host", "127.0.0.1", "--port", str(port), "--mode", "promote",
                          "--repo-url", str(self.origin), "--secret-file", str(secret_file),
                          "--config", str(self.repo / "gitops.yaml")],
                         log_path=self.dir / "receiver.log", env=self.env)
        _wait_http(f"{self.receiver_url}/readyz", timeout=30, what="webhook receiver")
        with RegistryClient(self.mlflow.url) as client:
            register_webhook(client, url=f"{self.receiver_url}/webhooks/mlflow", secret=secret_file.read_text())
        time.sleep(1.2)  # MLflow caches the webhook list for MLFLOW_WEBHOOK_CACHE_TTL (1 s here)
        self.progress.say(f"      receiver at {self.receiver_url} (log: {self.dir / 'receiver.log'})")

    def _move_alias(self, version: str, alias: str = "champion") -> None:
        """One registry of record: each alias feeds the serving environment gitops.yaml maps it to."""
        from gitops_tool.registry import RegistryClient

        before = _git("rev-parse", "main", cwd=self.origin)
        start = time.perf_counter()
        with RegistryClient(self.mlflow.url) as client:
            client.set_alias(MODEL, alias, version)
        commit = _wait_commit(self.origin, before, timeout=60)
        latency = time.perf_counter() - start
        self.summary["latencies_s"].append(round(latency, 3))
        p = self.progress
        p.say(f"      commit {commit[:12]} on origin/main: {_git('log', '-1', '--format=%s', commit, cwd=self.origin)}")
        p.say(f"      alias -> commit latency: {latency:.2f}s")
        diff = _git("show", "--format=", "--unified=0", commit, cwd=self.origin)
        changed = [line for line in diff.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
        for line in changed:
            p.say(f"        {line}")

    def _rollback_and_release(self) -> None:
        _git("pull", "--quiet", "--ff-only", "origin", "main", cwd=self.repo)
        _cli(self.progress, "rollback", MODEL, "--env", "prod", cwd=self.repo, env=self.env)
        # The hold at work: reconcile sees @champion=2 against Git's 1, skips the held pair and says so on v2.
        _cli(self.progress, "reconcile", cwd=self.repo, env=self.env)
        self.summary["held_tag"] = self._show_tags(only=("2", "prod"))
        _cli(self.progress, "release", MODEL, "--env", "prod", cwd=self.repo, env=self.env)
        # The hold is lifted and @champion still names v2: the polling fallback promotes it again,
        # so the demo ends with Git and the registry agreeing.
        _cli(self.progress, "reconcile", cwd=self.repo, env=self.env)

    def _inspect(self) -> None:
        _git("pull", "--quiet", "--ff-only", "origin", "main", cwd=self.repo)
        _cli(self.progress, "validate", "prod", cwd=self.repo, env=self.env)
        _cli(self.progress, "status", cwd=self.repo, env=self.env)
        _cli(self.progress, "history", MODEL, cwd=self.repo, env=self.env)
        status = json.loads(_cli(self.progress, "status", "--output", "json", cwd=self.repo, env=self.env,
                                 show=False))
        self.summary["final_status"] = status["rows"]
        self.summary["tags"] = self._show_tags()

    def _show_tags(self, only: tuple[str, str] | None = None) -> dict:
        """What the registry says about each version (the gitops.<env> tags the promotions wrote)."""
        from gitops_tool.promotion.version_tags import PREFIX, parse
        from gitops_tool.registry import RegistryClient

        found: dict[str, dict] = {}
        with RegistryClient(self.mlflow.url) as client:
            for version in [only[0]] if only else sorted(self.summary["versions"]):
                tags = client.get_version(MODEL, version).tags
                envs = [only[1]] if only else sorted(k.removeprefix(PREFIX) for k in tags if k.startswith(PREFIX))
                found[version] = {env: parse(tags, env) for env in envs}
                for env, state in found[version].items():
                    extra = ", ".join(f"{k} {v[:12] if k == 'commit' else v}" for k, v in (state or {}).items()
                                      if k in ("commit", "trigger", "reason"))
                    self.progress.say(f"      {MODEL} v{version} tag {PREFIX}{env}: "
                                      f"{(state or {}).get('state', 'none')} ({extra})")
        return found

    def _predict(self) -> None:
        import mlflow.pyfunc
        from sklearn.datasets import load_wine

        X, _ = load_wine(return_X_y=True, as_frame=True)
        rows = X.iloc[[0, 70, 140]]
        mlflow.set_tracking_uri(self.mlflow.url)
        deployed = next(r["git_version"] for r in self.summary["final_status"] if r["env"] == "prod")
        for version in sorted(self.summary["versions"]):
            model = mlflow.pyfunc.load_model(f"models:/{MODEL}/{version}")
            marker = "  <- served in prod" if version == deployed else ""
            self.progress.say(f"      version {version} predicts classes {list(map(int, model.predict(rows)))} "
                              f"for wine samples 0, 70, 140{marker}")
        self.summary["served_version"] = deployed

    def _summarise(self) -> None:
        log = _git("log", "--format=%H%x00%s", "main", cwd=self.origin).splitlines()
        self.summary["commits"] = [dict(zip(("sha", "subject"), line.split("\x00"))) for line in log]
        self.progress.say(f"      {len(log)} commits on origin/main:")
        for item in self.summary["commits"]:
            self.progress.say(f"        {item['sha'][:12]} {item['subject']}")
        drift = [f"{r['env']} at {r['git_version'] or 'none'} while @{a}={r['aliases'][a]}"
                 for r in self.summary["final_status"] for a in r["drift"]]
        self.summary["drift"] = drift
        deployed = ", ".join(f"{r['env']} {r['git_version'] or '-'}" for r in self.summary["final_status"])
        self.progress.say(f"      end state: {deployed}; "
                          + (f"drift left: {'; '.join(drift)}" if drift else "Git and the registry agree (no drift)"))
        self.summary["mlflow_restart"] = " ".join(self.mlflow.command())


def _wait_http(url: str, *, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise GitopsError(f"{what} at {url} did not become ready within {timeout:.0f}s")


def _wait_commit(origin: Path, before: str, *, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        head = _git("rev-parse", "main", cwd=origin)
        if head != before:
            return head
        time.sleep(0.02)
    raise GitopsError(f"no promotion commit reached {origin} within {timeout:.0f}s (see receiver.log)")


def run_demo(directory: Path | None, *, keep: bool, serve: bool, output: str) -> int:
    workdir = Path(directory).resolve() if directory else Path(tempfile.mkdtemp(prefix="gitops-tool-demo-"))
    if directory and workdir.exists() and any(workdir.iterdir()):
        raise GitopsError(f"{workdir}: not empty; the demo needs an empty or new directory")
    workdir.mkdir(parents=True, exist_ok=True)
    demo = Demo(workdir, serve=serve, quiet=output == "json")
    failed_at = None
    try:
        summary = demo.run()
    except BaseException as exc:
        step = demo.progress.current
        failed_at = f"step {step.number} ({step.title})" if step else "start-up"
        reason = "interrupted" if isinstance(exc, KeyboardInterrupt) else "failed"
        print(f"\ndemo {reason} at {failed_at}; stopping every process it started; files kept in {workdir}",
              file=sys.stderr)
        raise
    finally:
        demo.procs.stop()
        if not keep and failed_at is None:
            shutil.rmtree(workdir, ignore_errors=True)
    summary |= {"total_seconds": round(demo.progress.elapsed, 2), "directory": str(workdir) if keep else None,
                "steps": [{"step": s.number, "title": s.title, "seconds": s.seconds, "status": s.status}
                          for s in demo.progress.steps]}
    if output == "json":
        print(json.dumps(summary, indent=2))
    else:
        print(f"\ndemo finished in {summary['total_seconds']:.1f}s; alias -> commit latencies: "
              f"{', '.join(f'{x:.2f}s' for x in summary['latencies_s'])}")
        if keep:
            print(f"kept {workdir}: cd {workdir}/gitops && git log --stat; MLflow data in {workdir}/mlflow")
            print("the demo's MLflow has stopped; to explore its registry again (gitops.yaml points at it):\n"
                  f"  MLFLOW_WEBHOOK_ALLOWED_SCHEMES=http,https MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS=true "
                  f"{summary['mlflow_restart']}")
    return 0
