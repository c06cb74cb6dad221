"""Benchmark: MLflow alias set -> promotion commit on the remote, through the real webhook receiver.

    .venv/bin/python bench/webhook_bench.py                 # 20 alias moves, 10 profiled engine runs
    .venv/bin/python bench/webhook_bench.py --moves 20 --profile-runs 10 --json out.json

One run, on this machine, every part real:
  * a local `mlflow server` (sqlite) with two wine versions;
  * the receiver, `gitops-tool webhook serve --mode promote`, as a subprocess, registered as an MLflow
    webhook; per job it refreshes its warm clone of the bare remote (fetch + hard reset + checks; the
    first job clones, depth 1), resolves, renders + validates, commits, pushes;
  * the bench's own gitops.yaml: the starter with no gates (so v2 -> v1 is allowed every other move).

End to end: time.time() just before the set-alias REST call -> the remote's refs/heads/main changes
(the ref file is polled every 2 ms). Alias moves alternate v1/v2, one at a time, after two warm-up
moves (the first job pays the receiver's lazy imports; it is reported as "cold").

Floor, measured in the same run and the same iterations:
  * delivery: a second MLflow webhook to a do-nothing loopback HTTP server in this process that
    records the arrival time (MLflow delivers both webhooks in parallel from its thread pool);
  * commit + push: subprocess `git add`, `git commit`, `git push` of one changed file in a clone of a
    separate bare remote, right after each move has landed (so it does not compete with the job).
  floor_i = delivery_i + commit_push_i.

RSS: VmRSS of the receiver's process group (the receiver and any git/kubectl child) from /proc,
sampled every 25 ms: idle before any job (cold), idle after warm-up, and while jobs run.

Where the time goes: the receiver's own JSON log splits each move into delivery / queue / job /
detection; then the same engine call the receiver makes (`promote()` with a warm clone pool like the
receiver's, trigger webhook) runs in this process with timers around the warm refresh, config load,
resolve, release read,
edit, kustomize render, validation, git commit, git push; "other" is the rest of the wall time.

Goals: end-to-end p95 <= 2 s; p95 <= 2.5x the floor's p95 (issue 15; the render cache it assumes is
built separately: without it the render alone is about 3x the floor).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import re
import secrets
import shlex
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import types
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gitops_tool.mlflow_local import (  # noqa: E402
    V1_PARAMS, V2_PARAMS, LocalMlflowServer, free_port, group_members, train_wine_version)

MODEL = "wine-classifier"
HOOK_PATH = "/webhooks/mlflow"
IDENTITY = {"GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@localhost",
            "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@localhost"}


# -- small helpers -------------------------------------------------------------------------------

def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, **IDENTITY}).stdout.strip()


def pct(values: list[float], q: float) -> float:
    """Percentile by linear interpolation between closest ranks (numpy's default)."""
    s = sorted(values)
    if len(s) == 1:
        return s[0]
    pos = (len(s) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (pos - lo)


def summary(values: list[float]) -> dict[str, float]:
    return {"p50": pct(values, 0.5), "p95": pct(values, 0.95), "min": min(values), "max": max(values),
            "mean": statistics.fmean(values), "n": len(values)}


def fmt(values: list[float], unit: float = 1.0, suffix: str = "s", digits: int = 3) -> str:
    s = summary([v * unit for v in values])
    return (f"p50 {s['p50']:.{digits}f}{suffix}  p95 {s['p95']:.{digits}f}{suffix}  "
            f"min {s['min']:.{digits}f}  max {s['max']:.{digits}f}  (n={s['n']})")


def rss_kib(pgid: int) -> int:
    """Sum of VmRSS over the live processes of a process group (receiver + children)."""
    total = 0
    for pid in group_members(pgid):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
    return total


def ref_sha(bare: Path) -> str | None:
    try:
        return (bare / "refs" / "heads" / "main").read_text().strip()
    except OSError:
        return None


# -- the do-nothing receiver (delivery floor) -----------------------------------------------------

class NullReceiver:
    """Loopback HTTP server: records (arrival time, delivery id, body) and answers 200 at once."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str, dict]] = []
        self.cond = threading.Condition()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                arrived = time.time()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()
                try:
                    doc = json.loads(body)
                except ValueError:
                    doc = {}
                with outer.cond:
                    outer.arrivals.append((arrived, self.headers.get("X-MLflow-Delivery-Id", ""), doc))
                    outer.cond.notify_all()

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/null"

    def wait(self, count: int, timeout: float) -> tuple[float, str, dict]:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.arrivals) >= count, timeout):
                raise SystemExit(f"null receiver: delivery {count} did not arrive within {timeout:.0f}s")
            return self.arrivals[count - 1]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- RSS sampler ----------------------------------------------------------------------------------

class RssSampler:
    def __init__(self, pgid: int, every: float = 0.025):
        self.pgid, self.every = pgid, every
        self.samples: list[tuple[float, int, bool]] = []   # (time, KiB, a job was in flight)
        self.busy = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> RssSampler:
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), rss_kib(self.pgid), self.busy))
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# -- set-up ---------------------------------------------------------------------------------------

def make_project(tmp: Path, mlflow_url: str) -> tuple[Path, Path]:
    """The starter project without gates, pushed to a bare remote; returns (checkout, origin)."""
    from gitops_tool.project import generate, init_project

    origin, repo = tmp / "origin.git", tmp / "platform"
    git(tmp, "init", "--quiet", "--bare", "-b", "main", str(origin))
    init_project(repo, repo_url=str(origin), prod_approval="direct")  # a bare remote: no pull requests
    config = repo / "gitops.yaml"
    text = config.read_text().replace("http://127.0.0.1:5000", mlflow_url)
    text, removed = re.subn(r"(?m)^    gates:\n(?:      .*\n)+", "", text)
    if removed != 1:
        raise SystemExit("bench: could not drop the gates block from the starter gitops.yaml")
    config.write_text(text)
    generate(config)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "Platform generated by gitops-tool init (bench: no gates)")
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "origin", "main")
    return repo, origin


def make_floor_clone(tmp: Path, origin: Path) -> Path:
    floor_remote, floor_clone = tmp / "floor.git", tmp / "floor-clone"
    git(tmp, "clone", "-q", "--bare", str(origin), str(floor_remote))
    git(tmp, "clone", "-q", str(floor_remote), str(floor_clone))
    return floor_clone


def floor_commit_push(clone: Path, n: int) -> float:
    path = clone / "environments" / "prod" / "release" / "floor.txt"
    start = time.perf_counter()
    path.write_text(f"floor {n}\n")
    for args in (("add", "--", str(path)), ("commit", "-q", "-m", f"floor {n}"), ("push", "-q", "origin", "main")):
        subprocess.run(["git", *args], cwd=clone, check=True, capture_output=True, env={**os.environ, **IDENTITY})
    return time.perf_counter() - start


def floor_render(clone: Path) -> float:
    """One `kubectl kustomize` of the prod overlay: what validating before the commit costs at least."""
    from gitops_tool.kustomize.render import kubectl_path

    start = time.perf_counter()
    subprocess.run([kubectl_path(), "kustomize", str(clone / "environments" / "prod")], check=True,
                   capture_output=True)
    return time.perf_counter() - start


def start_receiver(tmp: Path, origin: Path, config: Path, secret_file: Path, env: dict) -> tuple[subprocess.Popen, str,
                                                                                                    Path, list[str]]:
    import requests

    port = free_port()
    cmd = [sys.executable, "-m", "gitops_tool.cli.main", "webhook", "serve", "--host", "127.0.0.1",
           "--port", str(port), "--mode", "promote", "--repo-url", str(origin), "--secret-file", str(secret_file),
           "--config", str(config)]
    log_path = tmp / "receiver.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(cmd, cwd=tmp, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        if proc.poll() is not None:
            raise SystemExit(f"receiver exited {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        with contextlib.suppress(requests.RequestException):
            if requests.get(url + "/readyz", timeout=2).status_code == 200:
                return proc, url, log_path, cmd
        if time.monotonic() > deadline:
            raise SystemExit("receiver not ready within 60s")
        time.sleep(0.1)


def stop_group(proc: subprocess.Popen) -> None:
    import signal

    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        if proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=wait)


def receiver_events(log_path: Path) -> list[dict]:
    out = []
    for line in log_path.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            out.append(json.loads(line))
    return out


def receiver_histogram(url: str) -> dict[str, float]:
    """gitops_alias_to_commit_seconds from the receiver's /metrics: count, sum and bucket counts."""
    import requests
    from prometheus_client.parser import text_string_to_metric_families

    out: dict[str, float] = {}
    for family in text_string_to_metric_families(requests.get(url + "/metrics", timeout=5).text):
        for sample in family.samples:
            if sample.name == "gitops_alias_to_commit_seconds_count":
                out["count"] = sample.value
            elif sample.name == "gitops_alias_to_commit_seconds_sum":
                out["sum"] = sample.value
            elif sample.name == "gitops_alias_to_commit_seconds_bucket":
                out[f"le {sample.labels['le']}"] = sample.value
    return out


def log_ts(event: dict) -> float:
    from datetime import datetime

    return datetime.fromisoformat(event["ts"]).timestamp()


# -- in-process profile of the engine call the receiver makes ---------------------------------------

class Timers:
    def __init__(self) -> None:
        self.runs: list[dict[str, float]] = []
        self.current: dict[str, float] = defaultdict(float)
        self._depth = 0

    def wrap(self, owner: object, attr: str, label: str) -> None:
        original = getattr(owner, attr)
        timers = self

        @functools.wraps(original)
        def timed(*args, **kwargs):
            outer = timers._depth == 0  # count nested timed calls once, in the outermost label
            timers._depth += 1
            start = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                timers._depth -= 1
                if outer:
                    timers.current[label] += time.perf_counter() - start

        setattr(owner, attr, timed)


def profile_engine(origin: Path, mlflow_url: str, versions: tuple[str, str], runs: int) -> tuple[list[dict], list]:
    import gitops_tool.kustomize.render as render_mod
    import gitops_tool.promotion.engine as engine
    import gitops_tool.gitrepo.warm as warm
    import gitops_tool.promotion.workspace as workspace
    import gitops_tool.validate as validate_mod
    from gitops_tool.gitrepo.repo import GitRepo
    from gitops_tool.promotion.model import PromotionRequest

    timers = Timers()
    clone = GitRepo.__dict__["clone"].__func__

    def timed_clone(cls, *args, **kwargs):
        start = time.perf_counter()
        try:
            return clone(cls, *args, **kwargs)
        finally:
            timers.current["clone (depth 1, --no-local)"] += time.perf_counter() - start

    GitRepo.clone = classmethod(timed_clone)
    timers.wrap(warm, "refresh", "warm clone refresh (fetch, reset, checks)")
    timers.wrap(workspace, "load_config", "load gitops.yaml")
    timers.wrap(engine, "resolve", "resolve (registry)")
    timers.wrap(engine, "read_release", "read release")
    timers.wrap(engine, "run_gates", "gates")
    timers.wrap(engine, "apply_edit", "edit overlay")
    timers.wrap(render_mod, "render", "kustomize render")
    timers.wrap(validate_mod, "validate_environment", "validate")
    timers.wrap(GitRepo, "ensure_clean", "git status (clean check)")
    timers.wrap(GitRepo, "untracked", "git status (clean check)")
    timers.wrap(GitRepo, "head_sha", "git rev-parse")
    timers.wrap(GitRepo, "commit", "git commit")
    timers.wrap(GitRepo, "push", "git push")
    workspace.shutil = types.SimpleNamespace(rmtree=workspace.shutil.rmtree)  # only the workspace's rmtree
    timers.wrap(workspace.shutil, "rmtree", "rmtree of the clone")

    results = []
    pool = warm.ClonePool(str(origin), "main")
    for i in range(runs + 1):  # run 0 warms the imports and the clone up; not reported
        version = versions[i % 2]
        timers.current = defaultdict(float)
        start = time.perf_counter()
        result = engine.promote(PromotionRequest(
            ref=f"{MODEL}/{version}", env="prod", repo_url=str(origin), trigger="webhook",
            delivery_id=f"bench-profile-{i}", tracking_uri=mlflow_url), clones=pool)
        wall = time.perf_counter() - start
        if not result.commit:
            raise SystemExit(f"profile run {i}: no commit ({result.skipped})")
        if i:
            row = dict(timers.current)
            row["other (registry client, tmp dir, python)"] = wall - sum(row.values())
            row["total"] = wall
            timers.runs.append(row)
            results.append(result)
    pool.close()
    return timers.runs, results


# -- main -----------------------------------------------------------------------------------------

def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--moves", type=int, default=20, help="measured alias moves (default 20)")
    parser.add_argument("--profile-runs", type=int, default=10, help="in-process engine runs with timers")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, repos)")
    args = parser.parse_args()
    command = shlex.join([os.path.relpath(sys.executable, ROOT) if sys.executable.startswith(str(ROOT))
                          else sys.executable, "bench/webhook_bench.py", *sys.argv[1:]])

    import requests

    from gitops_tool.registry import RegistryClient
    from gitops_tool.webhook.register import EVENTS, register_webhook

    tmp = Path(tempfile.mkdtemp(prefix="webhook-bench-"))
    server = LocalMlflowServer(tmp / "mlflow")
    procs: list[subprocess.Popen] = []
    null = NullReceiver()
    sampler = None
    try:
        t_setup = time.perf_counter()
        server.start(timeout=120)
        with contextlib.redirect_stdout(sys.stderr):
            v1 = train_wine_version(server.url, MODEL, **V1_PARAMS)["version"]
            v2 = train_wine_version(server.url, MODEL, **V2_PARAMS)["version"]
        repo, origin = make_project(tmp, server.url)
        floor_clone = make_floor_clone(tmp, origin)
        secret_file = tmp / "webhook-secret"
        secret_file.write_text(secrets.token_urlsafe(32) + "\n")
        env = {**os.environ, "MLFLOW_TRACKING_URI": server.url}
        env.pop("GITOPS_TOOL_WEBHOOK_SECRET", None)
        receiver, receiver_url, log_path, receiver_cmd = start_receiver(
            tmp, origin, repo / "gitops.yaml", secret_file, env)
        procs.append(receiver)
        sampler = RssSampler(receiver.pid).start()
        with RegistryClient(server.url) as client:
            register_webhook(client, url=receiver_url + HOOK_PATH, secret=secret_file.read_text().strip())
            client.create_webhook("bench-null", null.url, EVENTS, secrets.token_urlsafe(16),
                                  description="webhook_bench: delivery floor")
        time.sleep(1.5)  # MLFLOW_WEBHOOK_CACHE_TTL=1 on the local server
        idle_cold = rss_kib(receiver.pid)
        setup_s = time.perf_counter() - t_setup

        moves: list[dict] = []
        session = RegistryClient(server.url)

        def move(version: str, n: int) -> dict:
            before = ref_sha(origin)
            sampler.busy = True
            t0 = time.time()
            session.set_alias(MODEL, "champion", version)
            t_set = time.time()
            deadline = time.monotonic() + 120
            while (sha := ref_sha(origin)) == before:
                if time.monotonic() > deadline:
                    raise SystemExit(f"move {n}: no commit within 120s; see {log_path}")
                time.sleep(0.002)
            t_commit = time.time()
            sampler.busy = False
            arrived, delivery_id, doc = null.wait(n, timeout=60)
            if str(doc.get("data", {}).get("version")) != version:
                raise SystemExit(f"move {n}: null receiver got {doc}, expected version {version}")
            trailer = git(origin, "log", "-1", "--format=%(trailers:key=Delivery-Id,valueonly)", sha)
            return {"n": n, "version": version, "t0": t0, "set_call_s": t_set - t0, "e2e_s": t_commit - t0,
                    "commit": sha, "delivery_id": trailer, "null_delivery_s": arrived - t0,
                    "null_delivery_id": delivery_id}

        warm = [move(v1, 1), move(v2, 2)]
        time.sleep(0.5)
        idle_warm = rss_kib(receiver.pid)
        for i in range(args.moves):
            m = move(v1 if i % 2 == 0 else v2, len(warm) + i + 1)
            m["floor_commit_push_s"] = floor_commit_push(floor_clone, i)
            m["floor_s"] = m["null_delivery_s"] + m["floor_commit_push_s"]
            m["floor_render_s"] = floor_render(floor_clone)
            moves.append(m)
            time.sleep(0.1)
        session.close()
        time.sleep(0.5)
        idle_after = rss_kib(receiver.pid)
        sampler.stop()

        # The receiver's own view of each move, from its JSON log.
        events = receiver_events(log_path)
        accepted = {e["delivery_id"]: e for e in events if e.get("msg") == "delivery accepted"}
        done = {e["delivery_id"]: e for e in events if e.get("msg") == "job committed"}
        for m in warm + moves:
            a, d = accepted.get(m["delivery_id"]), done.get(m["delivery_id"])
            if a is None or d is None:
                raise SystemExit(f"move {m['n']}: delivery {m['delivery_id']} not in the receiver log")
            job_end = log_ts(d)
            m["rx_delivery_s"] = log_ts(a) - m["t0"]
            m["rx_job_s"] = float(d["seconds"])
            m["rx_queue_s"] = (job_end - m["rx_job_s"]) - log_ts(a)
            m["rx_detect_s"] = m["t0"] + m["e2e_s"] - job_end
        if any(e.get("msg") == "job failed" or e.get("outcome") == "failed" for e in events):
            raise SystemExit(f"the receiver logged failures; see {log_path}")

        hist = receiver_histogram(receiver_url)
        stop_group(receiver)
        profile, _ = profile_engine(origin, server.url, (v1, v2), args.profile_runs)
    finally:
        if sampler is not None:
            sampler.stop()
        for p in procs:
            stop_group(p)
        null.close()
        server.stop()
        if not args.keep:
            import shutil

            shutil.rmtree(tmp, ignore_errors=True)

    # -- report ----------------------------------------------------------------------------------
    e2e = [m["e2e_s"] for m in moves]
    floor = [m["floor_s"] for m in moves]
    delivery = [m["null_delivery_s"] for m in moves]
    commit_push = [m["floor_commit_push_s"] for m in moves]
    render = [m["floor_render_s"] for m in moves]
    floor_v = [m["floor_s"] + m["floor_render_s"] for m in moves]
    busy = [kib for _, kib, b in sampler.samples if b]
    e2e_s, floor_s = summary(e2e), summary(floor)
    ratio50, ratio95 = e2e_s["p50"] / floor_s["p50"], e2e_s["p95"] / floor_s["p95"]

    print(f"command: {command}")
    print(f"receiver: {shlex.join(['python', *receiver_cmd[1:]])}  (MLFLOW_TRACKING_URI=<local mlflow>)")
    print(f"set-up {setup_s:.1f}s; {args.moves} measured alias moves {MODEL}@champion alternating v{v1}/v{v2} "
          f"after 2 warm-up moves; {os.cpu_count()} CPUs")
    print()
    print("alias set -> commit on the remote (end to end)")
    print(f"  e2e                 {fmt(e2e)}")
    print(f"  cold (first job)    {warm[0]['e2e_s']:.3f}s   second warm-up {warm[1]['e2e_s']:.3f}s")
    print("floor (same run, same iterations)")
    print(f"  MLflow delivery     {fmt(delivery, 1000, 'ms', 1)}   (to a do-nothing loopback server)")
    print(f"  git commit + push   {fmt(commit_push, 1000, 'ms', 1)}   (subprocess git, clone of a bare remote)")
    print(f"  floor (sum)         {fmt(floor)}")
    print(f"ratio e2e/floor       p50 {ratio50:.1f}x   p95 {ratio95:.1f}x")
    print(f"  (for reference) one `kubectl kustomize` of the prod overlay {fmt(render, 1000, 'ms', 1)}")
    fv = summary(floor_v)
    print(f"  floor + that render {fmt(floor_v)}   e2e/that: p50 {e2e_s['p50'] / fv['p50']:.1f}x  "
          f"p95 {e2e_s['p95'] / fv['p95']:.1f}x")
    print(f"goal p95 <= 2 s: {'yes' if e2e_s['p95'] <= 2 else 'NO'} ({e2e_s['p95']:.3f}s);  "
          f"p95 <= 2.5x floor: {'yes' if ratio95 <= 2.5 else 'NO'} ({ratio95:.1f}x);  "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    all_e2e = [m["e2e_s"] for m in warm + moves]
    if hist.get("count"):
        print(f"receiver's own histogram gitops_alias_to_commit_seconds: count {hist['count']:.0f}, mean "
              f"{hist['sum'] / hist['count']:.3f}s, <=0.5s: {hist.get('le 0.5', 0):.0f}, <=1s: {hist.get('le 1.0', 0):.0f}"
              f"  (measured here over the same {len(all_e2e)} moves: mean {statistics.fmean(all_e2e):.3f}s)")
    print()
    print("receiver RSS (VmRSS of its process group: receiver + git/kubectl children)")
    print(f"  idle, before any job     {idle_cold / 1024:7.1f} MiB")
    print(f"  idle, after warm-up      {idle_warm / 1024:7.1f} MiB   after the run {idle_after / 1024:.1f} MiB")
    if busy:
        print(f"  while jobs run           p50 {statistics.median(busy) / 1024:.1f} MiB   "
              f"max {max(busy) / 1024:.1f} MiB   ({len(busy)} samples every 25 ms)")
    print()
    print("where the end-to-end time goes (receiver log, per move)")
    for key, label in (("rx_delivery_s", "alias set -> delivery accepted"),
                       ("rx_queue_s", "accepted -> job starts (queue)"),
                       ("rx_job_s", "job (clone..push, handler)"),
                       ("rx_detect_s", "job logged -> ref seen (<0: before cleanup)")):
        print(f"  {label:<40} {fmt([m[key] for m in moves], 1000, 'ms', 1)}")
    print()
    print(f"inside the job: the same engine call in-process, {len(profile)} runs (p50 / p95 / share of p50 total)")
    total50 = pct([r["total"] for r in profile], 0.5)
    labels = [k for k in profile[0] if k != "total"]
    for label in sorted(labels, key=lambda k: -pct([r.get(k, 0.0) for r in profile], 0.5)):
        vals = [r.get(label, 0.0) for r in profile]
        print(f"  {label:<48} {pct(vals, .5) * 1000:7.1f}ms {pct(vals, .95) * 1000:7.1f}ms "
              f"{100 * pct(vals, .5) / total50:5.1f}%")
    print(f"  {'total':<48} {total50 * 1000:7.1f}ms {pct([r['total'] for r in profile], .95) * 1000:7.1f}ms")

    if args.json:
        args.json.write_text(json.dumps({
            "command": command, "moves": moves, "warmup": warm, "e2e": e2e_s, "floor": floor_s,
            "delivery": summary(delivery), "commit_push": summary(commit_push), "render": summary(render),
            "ratio_p50": ratio50, "ratio_p95": ratio95,
            "rss_kib": {"idle_cold": idle_cold, "idle_warm": idle_warm, "idle_after": idle_after,
                        "busy_p50": statistics.median(busy) if busy else None, "busy_max": max(busy) if busy else None},
            "profile": profile, "receiver_histogram": hist}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
