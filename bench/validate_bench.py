"""Benchmark: bare `kubectl kustomize` of N overlays vs `validate_all` of the same overlays.

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

_PROBES = """\
          readinessProbe: {{tcpSocket: {{port: {port}}}}}
          livenessProbe: {{tcpSocket: {{port: {port}}}}}
"""
_RESOURCES = """\
          resources:
            requests: {cpu: 100m, memory: 128Mi}
            limits: {cpu: "1", memory: 512Mi}
"""


def _workload(kind: str, name: str, image: str, port: int, extra_spec: str = "") -> str:
    return f"""\
apiVersion: apps/v1
kind: {kind}
metadata: {{name: {name}}}
spec:
{extra_spec}  selector: {{matchLabels: {{app: {name}}}}}
  template:
    metadata: {{labels: {{app: {name}}}}}
    spec:
      serviceAccountName: mlflow
      containers:
        - name: {name}
          image: {image}
          ports: [{{containerPort: {port}, name: main}}]
          env:
            - name: DB_PASSWORD
              valueFrom: {{secretKeyRef: {{name: {name}-credentials, key: password}}}}
{_RESOURCES}{_PROBES.format(port=port)}"""


def _service(name: str, port: int, headless: bool = False) -> str:
    cluster_ip = "  clusterIP: None\n" if headless else ""
    return f"""\
apiVersion: v1
kind: Service
metadata: {{name: {name}}}
spec:
{cluster_ip}  selector: {{app: {name}}}
  ports: [{{name: main, port: {port}, targetPort: main}}]
"""


BASE = {
    "serviceaccount.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: mlflow}\n",
    "configmap.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mlflow-config}\n"
    "data: {MLFLOW_S3_ENDPOINT_URL: 'http://minio:9000'}\n",
    "mlflow.yaml": _workload("Deployment", "mlflow", "ghcr.io/mlflow/mlflow", 5000, "  replicas: 1\n"),
    "mlflow-svc.yaml": _service("mlflow", 5000),
    "postgres.yaml": _workload("StatefulSet", "postgres", "postgres", 5432, "  serviceName: postgres\n"),
    "postgres-svc.yaml": _service("postgres", 5432, headless=True),
    "minio.yaml": _workload("StatefulSet", "minio", "minio/minio", 9000, "  serviceName: minio\n"),
    "minio-svc.yaml": _service("minio", 9000),
    "bucket-job.yaml": """\
apiVersion: batch/v1
kind: Job
metadata: {name: minio-bucket}
spec:
  template:
    spec:
      restartPolicy: OnFailure
      containers:
        - name: mc
          image: minio/mc
          args: [mb, --ignore-existing, local/mlflow]
""" + _RESOURCES,
    "ingress.yaml": """\
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: mlflow}
spec:
  ingressClassName: nginx
  rules:
    - host: mlflow.example.com
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: mlflow, port: {number: 5000}}}}
""",
    "netpol-deny.yaml": "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: default-deny}\n"
    "spec: {podSelector: {}, policyTypes: [Ingress]}\n",
    "netpol-mlflow.yaml": """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: allow-mlflow}
spec:
  podSelector: {matchLabels: {app: mlflow}}
  ingress: [{ports: [{port: 5000, protocol: TCP}]}]
""",
    "servicemonitor.yaml": """\
apiVersion: monitoring.coreos.com/v1
kind: ServiceMonitor
metadata: {name: mlflow}
spec:
  selector: {matchLabels: {app: mlflow}}
  endpoints: [{port: main, path: /metrics, interval: 30s}]
""",
    "inferenceservice.yaml": """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata: {name: wine}
spec:
  predictor:
    model:
      modelFormat: {name: mlflow}
      protocolVersion: v2
      storageUri: s3://mlflow/models/wine/1
""" + _RESOURCES.replace("          ", "      "),
}

OVERLAY = """\
namespace: mlflow-{env}
resources: [../../base]
labels:
  - pairs: {{environment: {env}}}
    includeSelectors: false
images:
  - {{name: ghcr.io/mlflow/mlflow, newTag: v3.17.2}}
  - {{name: postgres, newTag: "16.4"}}
  - {{name: minio/minio, newTag: RELEASE.2025-04-22T22-12-26Z}}
  - {{name: minio/mc, digest: "sha256:{digest}"}}
patches:
  - target: {{kind: Deployment, name: mlflow}}
    patch: |-
      - op: replace
        path: /spec/replicas
        value: {replicas}
  - target: {{kind: StatefulSet, name: postgres}}
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/resources/limits/memory
        value: 1Gi
"""


def generate(root: Path, n: int) -> dict[str, Path]:
    base = root / "base"
    base.mkdir(parents=True)
    for name, text in BASE.items():
        (base / name).write_text(text)
    (base / "kustomization.yaml").write_text("resources:\n" + "".join(f"  - {n}\n" for n in BASE))
    overlays = {}
    for i in range(n):
        env = f"env{i:02d}"
        overlay = root / "environments" / env
        overlay.mkdir(parents=True)
        (overlay / "kustomization.yaml").write_text(OVERLAY.format(env=env, digest="a" * 64, replicas=1 + i % 3))
        overlays[env] = overlay
    return overlays


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("counts", nargs="*", type=int, default=[3, 30])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args(argv)
    schema_dir = SCHEMAS if SCHEMAS.is_dir() else None
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    print(f"cpu_count={os.cpu_count()} schema_dir={schema_dir} k8s={K8S_VERSION} repeats={args.repeats}")
    for n in args.counts:
        with tempfile.TemporaryDirectory(prefix="validate-bench-") as tmp:
            r = bench(generate(Path(tmp), n), args.repeats, max_workers=args.workers, schema_dir=schema_dir)
        print(f"N={r['n']:>3} workers={r['workers']}: bare kustomize {r['bare_median_s']:.3f}s, "
              f"validate_all {r['validate_median_s']:.3f}s (first {r['validate_first_s']:.3f}s), "
              f"ratio {r['ratio']:.2f}; checks alone (sequential, warm) {r['checks_only_sequential_s']:.3f}s "
              f"of which YAML parse {r['parse_only_sequential_s']:.3f}s; findings {r['findings']}")
        print(f"       CPU (self+kustomize) bare {r['bare_cpu_s']:.3f}s, validate_all {r['validate_cpu_s']:.3f}s, "
              f"ratio {r['validate_cpu_s'] / r['bare_cpu_s']:.2f}; fresh interpreter each: bare "
              f"{r['cold_bare_s']:.3f}s, validate {r['cold_validate_s']:.3f}s, ratio {r['cold_ratio']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
