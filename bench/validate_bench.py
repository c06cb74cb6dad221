"""Benchmark: bare `kubectl kustomize` of N generated overlays vs `validate_all` of the same overlays.

    .venv/bin/python bench/validate_bench.py            # N = 3 and 30, 5 repeats
    .venv/bin/python bench/validate_bench.py 30 --repeats 5 --workers 2

Both sides use the same max_workers. The goal is validate/bare <= 1.3.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gitops_tool.kustomize.render import parse_documents, render_many
from gitops_tool.validate import K8S_VERSION, validate_all, validate_environment

SCHEMAS = Path(__file__).resolve().parents[2] / "shared" / "schemas"

def generate(root: Path, n: int) -> dict[str, Path]:
    """The real platform from `gitops-tool generate`: the platform instance plus N serving environments,
    each serving a promoted model."""
    from gitops_tool.config import load_config
    from gitops_tool.kustomize.release import parse_image
    from gitops_tool.kustomize.release_edit import ReleaseEdit, plan_release_edit
    from gitops_tool.project import generate as run_generate, starter_config

    text = starter_config()
    head = text[: text.index("\nenvironments:\n")] + "\nenvironments:\n"
    for i in range(n):
        head += (f"  env{i:02d}:\n    namespace: models-env{i:02d}\n"
                 f"    serving: {{mode: Standard, min_replicas: 1, max_replicas: {1 + i % 3}}}\n")
    models = ("\nmodels:\n  wine-classifier:\n    image_repository: registry.example.com/ml/wine-classifier\n"
              "    aliases: {champion: env00}\n")
    root.mkdir(parents=True, exist_ok=True)
    (root / "gitops.yaml").write_text(head + models)
    run_generate(root / "gitops.yaml")
    cfg = load_config(root / "gitops.yaml")
    image = parse_image("registry.example.com/ml/wine-classifier@sha256:" + "a" * 64)
    for env in cfg.environments:
        edit = ReleaseEdit("wine-classifier", "7", image=image)
        for path, body in plan_release_edit(cfg.env_dir(env), edit).items():
            path.write_text(body)
    return {"platform/main": cfg.platform_dir("main")} | {env: cfg.env_dir(env) for env in cfg.environments}


def _cpu() -> float:
    """CPU seconds of this process and its finished children (kustomize)."""
    me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _timed(fn, cpu: list[float] | None = None) -> tuple[float, object]:
    start, cpu_start = time.perf_counter(), _cpu()
    result = fn()
    if cpu is not None:
        cpu.append(_cpu() - cpu_start)
    return time.perf_counter() - start, result


_COLD = {
    "bare": "from gitops_tool.kustomize.render import render_many as f; f(D, max_workers=W)",
    "validate": "from gitops_tool.validate import validate_all as f; f(D, schema_dir=S, max_workers=W)",
}


def cold(overlays: dict[str, Path], repeats: int, max_workers: int, schema_dir: Path | None) -> dict[str, float]:
    """Median wall time of a fresh interpreter doing each side (imports and schema loading included)."""
    setup = (f"from pathlib import Path; D = {{k: Path(v) for k, v in {json.dumps({k: str(v) for k, v in overlays.items()})}.items()}}; "
             f"S = {repr(str(schema_dir)) if schema_dir else None}; S = Path(S) if S else None; W = {max_workers}; ")
    times: dict[str, list[float]] = {"bare": [], "validate": []}
    for _ in range(repeats):
        for side, code in _COLD.items():
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", setup + code], check=True)
            times[side].append(time.perf_counter() - start)
    return {side: statistics.median(values) for side, values in times.items()}


def bench(overlays: dict[str, Path], repeats: int = 5, *, max_workers: int | None = None,
          schema_dir: Path | None = None) -> dict[str, float]:
    """Median seconds of bare kustomize (a) and validate_all (b), alternating, same max_workers."""
    workers = max_workers or os.cpu_count() or 1
    bare: list[float] = []
    full: list[float] = []
    bare_cpu: list[float] = []
    full_cpu: list[float] = []
    findings: list = []
    for _ in range(repeats):
        seconds, rendered = _timed(lambda: render_many(overlays, max_workers=workers), bare_cpu)
        bare.append(seconds)
        failed = [env for env, out in rendered.items() if not isinstance(out, str)]  # type: ignore[union-attr]
        if failed:
            raise SystemExit(f"kustomize failed for {failed}: {rendered[failed[0]]}")  # type: ignore[index]
        seconds, findings = _timed(lambda: validate_all(overlays, schema_dir=schema_dir,
                                                          k8s_version=K8S_VERSION, max_workers=workers), full_cpu)
        full.append(seconds)
    # Where the time goes: checks alone, sequentially, on already rendered text.
    texts = {env: out for env, out in rendered.items()}  # type: ignore[union-attr]
    parse_s, _ = _timed(lambda: [parse_documents(t) for t in texts.values()])  # type: ignore[arg-type]
    checks_s, _ = _timed(lambda: [validate_environment(e, t, schema_dir=schema_dir)  # type: ignore[arg-type]
                                  for e, t in texts.items()])
    a, b = statistics.median(bare), statistics.median(full)
    cold_s = cold(overlays, repeats, workers, schema_dir)
    return {"n": len(overlays), "workers": workers, "bare_median_s": a, "validate_median_s": b,
            "ratio": b / a, "validate_first_s": full[0], "checks_only_sequential_s": checks_s,
            "parse_only_sequential_s": parse_s, "findings": len(findings),
            "bare_cpu_s": statistics.median(bare_cpu), "validate_cpu_s": statistics.median(full_cpu),
            "cold_bare_s": cold_s["bare"], "cold_validate_s": cold_s["validate"],
            "cold_ratio": cold_s["validate"] / cold_s["bare"]}


def one_env(root: Path, env: str, repeats: int, schema_dir: Path | None) -> dict[str, float]:
    """`gitops-tool validate ENV` (CLI, committed tree: the secret scan reads what git tracks) vs a
    bare `kubectl kustomize` of the same overlay, each a fresh process, interleaved."""
    from gitops_tool.kustomize.render import kubectl_path

    git = {"cwd": root, "check": True, "capture_output": True}
    subprocess.run(["git", "init", "-q", "-b", "main"], **git)
    subprocess.run(["git", "add", "-A"], **git)
    subprocess.run(["git", "-c", "user.name=b", "-c", "user.email=b@localhost", "commit", "-q", "-m", "p"], **git)
    cli = [sys.executable, "-m", "gitops_tool.cli.main", "validate", env] + (
        ["--schema-dir", str(schema_dir)] if schema_dir else ["--allow-unchecked"])
    bare = [kubectl_path(), "kustomize", str(root / "environments" / env)]
    times: dict[str, list[float]] = {"cli": [], "bare": []}
    for _ in range(repeats):
        for side, cmd in (("cli", cli), ("bare", bare)):
            start = time.perf_counter()
            subprocess.run(cmd, cwd=root, check=True, capture_output=True)
            times[side].append(time.perf_counter() - start)
    return {side: statistics.median(values) for side, values in times.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("counts", nargs="*", type=int, default=[3, 30])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--one-env", action="store_true",
                        help="also time the CLI `validate env00` against a bare kustomize of env00")
    args = parser.parse_args(argv)
    schema_dir = SCHEMAS if SCHEMAS.is_dir() else None
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    print(f"cpu_count={os.cpu_count()} schema_dir={schema_dir} k8s={K8S_VERSION} repeats={args.repeats}")
    for n in args.counts:
        with tempfile.TemporaryDirectory(prefix="validate-bench-") as tmp:
            r = bench(generate(Path(tmp), n), args.repeats, max_workers=args.workers, schema_dir=schema_dir)
            single = one_env(Path(tmp), "env00", args.repeats, schema_dir) if args.one_env else None
        print(f"N={r['n']:>3} workers={r['workers']}: bare kustomize {r['bare_median_s']:.3f}s, "
              f"validate_all {r['validate_median_s']:.3f}s (first {r['validate_first_s']:.3f}s), "
              f"ratio {r['ratio']:.2f}; checks alone (sequential, warm) {r['checks_only_sequential_s']:.3f}s "
              f"of which YAML parse {r['parse_only_sequential_s']:.3f}s; findings {r['findings']}")
        print(f"       CPU (self+kustomize) bare {r['bare_cpu_s']:.3f}s, validate_all {r['validate_cpu_s']:.3f}s, "
              f"ratio {r['validate_cpu_s'] / r['bare_cpu_s']:.2f}; fresh interpreter each: bare "
              f"{r['cold_bare_s']:.3f}s, validate {r['cold_validate_s']:.3f}s, ratio {r['cold_ratio']:.2f}")
        if single:
            print(f"       one environment: `gitops-tool validate env00` {single['cli']:.3f}s, bare kustomize of "
                  f"env00 {single['bare']:.3f}s, ratio {single['cli'] / single['bare']:.2f}")
    print("load average %.2f %.2f %.2f" % os.getloadavg())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
