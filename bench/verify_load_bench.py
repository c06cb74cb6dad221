"""Benchmark: what `verify:` PromQL checking (one `promtool check rules` per load) adds to loading gitops.yaml.

    .venv/bin/python bench/verify_load_bench.py [--repeats 20]

Floor: loading the starter gitops.yaml (no verify) in the same process and run. Measured: the same
config with two verify checks on prod, cold (promtool runs, as in one CLI run) and again (promtool's
verdict is cached per expression set, as in the receiver's next job), and `promtool check rules` on
an equivalent rule file alone. Medians.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from gitops_tool.config import load_config_text, stage_checks  # noqa: E402

VERIFY = """    verify:
      prometheus_url: http://prometheus.monitoring:9090
      checks:
        - name: error-rate
          query: '(sum(rate(mlflow_http_request_total{namespace="$namespace",status=~"5.."}[$window])) or vector(0)) / sum(rate(mlflow_http_request_total{namespace="$namespace"}[$window]))'
          max: 0.05
        - name: latency-p99
          query: 'histogram_quantile(0.99, sum by (le) (rate(mlflow_http_request_duration_seconds_bucket{namespace="$namespace"}[$window])))'
          max: 0.5
"""
RULES = """groups:
- name: verify
  rules:
  - record: a
    expr: sum(rate(x{namespace="n"}[5m])) / sum(rate(y[5m]))
  - record: b
    expr: histogram_quantile(0.99, sum by (le) (rate(z_bucket[5m])))
"""


def _median(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    if not shutil.which("promtool"):
        print("promtool is not on PATH (Debian package prometheus)", file=sys.stderr)
        return 1
    base = resources.files("gitops_tool.templates").joinpath("gitops.yaml").read_text()
    marker = "  prod:\n    namespace: models-prod\n"
    with_verify = base.replace(marker, marker + VERIFY)
    load_config_text(base), load_config_text(with_verify)  # warm imports and the schema
    floor = _median(lambda: load_config_text(base), args.repeats)
    verify = _median(lambda: load_config_text(with_verify), args.repeats)  # promtool's verdict cached

    def cold() -> None:  # as one CLI run sees it: promtool runs
        stage_checks._promtool_errors.cache_clear()
        load_config_text(with_verify)

    first = _median(cold, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        rules = Path(tmp) / "r.yaml"
        rules.write_text(RULES)
        promtool = _median(lambda: subprocess.run(["promtool", "check", "rules", str(rules)], check=True,
                                                  capture_output=True), args.repeats)
    print(f"floor: load without verify      {floor * 1000:8.1f} ms")
    print(f"load with 2 verify checks, cold  {first * 1000:8.1f} ms  (+{(first - floor) * 1000:.1f} ms, "
          f"ratio {first / floor:.2f}; one CLI run)")
    print(f"load with 2 verify checks, again {verify * 1000:8.1f} ms  (+{(verify - floor) * 1000:.1f} ms, "
          f"ratio {verify / floor:.2f}; the receiver's next job)")
    print(f"promtool check rules alone       {promtool * 1000:8.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
