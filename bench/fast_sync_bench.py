"""Benchmark: MLflow alias set -> promotion commit -> Argo CD refresh requested, and the tag write's cost.

    .venv/bin/python bench/fast_sync_bench.py                  # 20 alias moves, 10 in-process engine runs
    .venv/bin/python bench/fast_sync_bench.py --moves 20 --profile-runs 10 --json out.json

One run, on this machine:
  * a local `mlflow server` (sqlite) with two wine versions (real);
  * the receiver, `gitops-tool webhook serve --mode promote`, as a subprocess, registered as an MLflow
    webhook (real), with `argocd.refresh: annotation` (the default) and a kubeconfig pointing at
  * a loopback Kubernetes API stand-in in this process (no cluster here) that answers the PATCH of
    the Application and records when it arrived: "refresh requested".

Per move: t0 just before the set-alias REST call; commit = the remote's refs/heads/main changes
(polled every 2 ms); refresh = the stand-in receives the PATCH of argocd/<project>-prod.

Floor, measured in the same run and the same iterations (as bench/webhook_bench.py): MLflow's
delivery of a second webhook to a do-nothing loopback receiver, plus one git commit + push of one
file to a separate bare remote. floor_i = delivery_i + commit_push_i.

The tag write: the same engine call the receiver makes runs in this process (`promote()` on a
fresh depth-1 clone, trigger webhook) with every registry request counted by method and path, and
the step times of `argocd refresh` and `record on version` taken from the result.
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import os
import secrets
import shlex
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from webhook_bench import (  # noqa: E402
    MODEL, NullReceiver, floor_commit_push, make_floor_clone, make_project, ref_sha, start_receiver, stop_group,
    summary)

from gitops_tool.mlflow_local import V1_PARAMS, V2_PARAMS, LocalMlflowServer, train_wine_version  # noqa: E402

HOOK_PATH = "/webhooks/mlflow"


class KubeStandIn:
    """Loopback stand-in for the Kubernetes API server: records (arrival time, method, path) of each request."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str, str]] = []
        self.cond = threading.Condition()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _answer(self) -> None:
                arrived = time.time()
                self.rfile.read(int(self.headers.get("Content-Length") or 0))
                body = b'{"kind":"Application","apiVersion":"argoproj.io/v1alpha1","metadata":{}}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                with outer.cond:
                    outer.calls.append((arrived, self.command, self.path.split("?")[0]))
                    outer.cond.notify_all()

            do_PATCH = do_GET = _answer

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def kubeconfig(self, path: Path) -> Path:
        import yaml

        path.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config", "current-context": "standin",
            "clusters": [{"name": "standin", "cluster": {"server": self.url}}],
            "users": [{"name": "bench", "user": {}}],
            "contexts": [{"name": "standin", "context": {"cluster": "standin", "user": "bench"}}]}))
        return path

    def wait(self, count: int, timeout: float) -> tuple[float, str, str]:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.calls) >= count, timeout):
                raise SystemExit(f"kube stand-in: request {count} did not arrive within {timeout:.0f}s")
            return self.calls[count - 1]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def profile_engine(origin: Path, mlflow_url: str, versions: tuple[str, str], runs: int) -> list[dict]:
    """The receiver's engine call in-process: registry requests by kind, step seconds, wall time."""
    import gitops_tool.registry.client as client_mod
    from gitops_tool.promotion.engine import promote
    from gitops_tool.promotion.model import PromotionRequest

    calls: Counter = Counter()
    original = client_mod.RegistryClient._request

    def counted(self, method, path, what, **kwargs):
        calls[f"{method} {path.removeprefix(client_mod.API)}"] += 1
        return original(self, method, path, what, **kwargs)

    client_mod.RegistryClient._request = counted
    rows = []
    try:
        for i in range(runs + 1):  # run 0 warms the imports up; not reported
            calls.clear()
            start = time.perf_counter()
            result = promote(PromotionRequest(ref=f"{MODEL}/{versions[i % 2]}", env="prod", repo_url=str(origin),
                                              trigger="webhook", delivery_id=f"bench-{i}", tracking_uri=mlflow_url,
                                              event_timestamp=time.time()))
            wall = time.perf_counter() - start
            if not result.commit:
                raise SystemExit(f"profile run {i}: no commit ({result.skipped})")
            steps = {s.name: s for s in result.steps}
            if steps["record on version"].status != "ok" or steps["argocd refresh"].status != "ok":
                raise SystemExit(f"profile run {i}: {[(s.name, s.status, s.detail) for s in result.steps]}")
            if i:
                rows.append({"wall_s": wall, "calls": dict(calls),
                             "tag_s": steps["record on version"].seconds, "refresh_s": steps["argocd refresh"].seconds})
    finally:
        client_mod.RegistryClient._request = original
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--moves", type=int, default=20, help="measured alias moves (default 20)")
    parser.add_argument("--profile-runs", type=int, default=10, help="in-process engine runs (default 10)")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    command = shlex.join([os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT))
                          else sys.executable, "bench/fast_sync_bench.py", *sys.argv[1:]])

    from gitops_tool.registry import RegistryClient
    from gitops_tool.webhook.register import EVENTS, register_webhook

    tmp = Path(tempfile.mkdtemp(prefix="fast-sync-bench-"))
    server, null, kube = LocalMlflowServer(tmp / "mlflow"), NullReceiver(), KubeStandIn()
    receiver = None
    try:
        server.start(timeout=120)
        with contextlib.redirect_stdout(sys.stderr):
            v1 = train_wine_version(server.url, MODEL, **V1_PARAMS)["version"]
            v2 = train_wine_version(server.url, MODEL, **V2_PARAMS)["version"]
        repo, origin = make_project(tmp, server.url)
        floor_clone = make_floor_clone(tmp, origin)
        secret_file = tmp / "webhook-secret"
        secret_file.write_text(secrets.token_urlsafe(32) + "\n")
        kubeconfig = kube.kubeconfig(tmp / "kubeconfig")
        os.environ["KUBECONFIG"] = str(kubeconfig)  # the in-process profile refreshes against the stand-in too
        env = {**os.environ, "MLFLOW_TRACKING_URI": server.url}
        env.pop("GITOPS_TOOL_WEBHOOK_SECRET", None)
        receiver, receiver_url, log_path, _ = start_receiver(tmp, origin, repo / "gitops.yaml", secret_file, env)
        with RegistryClient(server.url) as client:
            register_webhook(client, url=receiver_url + HOOK_PATH, secret=secret_file.read_text().strip())
            client.create_webhook("bench-null", null.url, EVENTS, secrets.token_urlsafe(16),
                                  description="fast_sync_bench: delivery floor")
        time.sleep(1.5)  # MLFLOW_WEBHOOK_CACHE_TTL=1 on the local server
        session = RegistryClient(server.url)

        def move(version: str, n: int) -> dict:
            before = ref_sha(origin)
            t0 = time.time()
            session.set_alias(MODEL, "champion", version)
            deadline = time.monotonic() + 120
            while ref_sha(origin) == before:
                if time.monotonic() > deadline:
                    raise SystemExit(f"move {n}: no commit within 120s; see {log_path}")
                time.sleep(0.002)
            t_commit = time.time()
            t_refresh, method, path = kube.wait(n, timeout=60)
            if method != "PATCH" or not path.endswith("/applications/mlflow-platform-prod"):
                raise SystemExit(f"move {n}: stand-in got {method} {path}")
            arrived, _, _ = null.wait(n, timeout=60)
            return {"n": n, "commit_s": t_commit - t0, "refresh_s": t_refresh - t0, "null_delivery_s": arrived - t0}

        move(v1, 1), move(v2, 2)  # warm-up: lazy imports (engine, kubernetes client) in the receiver
        moves = []
        for i in range(args.moves):
            m = move(v1 if i % 2 == 0 else v2, 3 + i)
            m["floor_commit_push_s"] = floor_commit_push(floor_clone, i)
            m["floor_s"] = m["null_delivery_s"] + m["floor_commit_push_s"]
            moves.append(m)
            time.sleep(0.1)
        session.close()
        stop_group(receiver)
        receiver = None
        profile = profile_engine(origin, server.url, (v1, v2), args.profile_runs)
    finally:
        if receiver is not None:
            stop_group(receiver)
        null.close()
        kube.close()
        server.stop()

    col = {k: summary([m[k] for m in moves]) for k in ("commit_s", "refresh_s", "floor_s", "null_delivery_s",
                                                        "floor_commit_push_s")}
    col["commit_to_refresh_s"] = summary([m["refresh_s"] - m["commit_s"] for m in moves])
    tag_s, refresh_step_s, wall_s = ([r[k] for r in profile] for k in ("tag_s", "refresh_s", "wall_s"))
    kinds = Counter()
    for r in profile:
        kinds.update(r["calls"])
    per_job = {k: v / len(profile) for k, v in sorted(kinds.items())}
    report = {"command": command, "moves": col, "profile": {
        "registry_requests_per_job": per_job, "tag_step_s": summary(tag_s), "refresh_step_s": summary(refresh_step_s),
        "job_wall_s": summary(wall_s)}}
    ms = lambda s: f"{s * 1000:.1f} ms"  # noqa: E731
    print(f"command: {command}\n")
    print("| | p50 | p95 |\n| --- | --- | --- |")
    for label, key in (("alias -> commit on the remote", "commit_s"), ("alias -> refresh requested", "refresh_s"),
                       ("commit -> refresh requested", "commit_to_refresh_s"),
                       ("floor: MLflow delivery to a null receiver", "null_delivery_s"),
                       ("floor: git commit + push", "floor_commit_push_s"), ("floor (sum)", "floor_s")):
        print(f"| {label} | {ms(col[key]['p50'])} | {ms(col[key]['p95'])} |")
    print(f"| ratio alias -> refresh requested / floor | {col['refresh_s']['p50'] / col['floor_s']['p50']:.1f}x | "
          f"{col['refresh_s']['p95'] / col['floor_s']['p95']:.1f}x |")
    print(f"\nin-process engine runs (n={len(profile)}): job p50 {ms(summary(wall_s)['p50'])}; "
          f"'record on version' step p50 {ms(summary(tag_s)['p50'])} p95 {ms(summary(tag_s)['p95'])}; "
          f"'argocd refresh' step p50 {ms(summary(refresh_step_s)['p50'])} p95 {ms(summary(refresh_step_s)['p95'])}")
    print("registry requests per job: " + ", ".join(f"{k} x{v:g}" for k, v in per_job.items()))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
