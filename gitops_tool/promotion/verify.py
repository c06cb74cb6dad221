"""Verification: an environment's PromQL checks (`environments.<env>.verify`) against Prometheus.

Each check runs as a range query over its window (step: window/20, at least 1s) and holds only if
every point of every series is within its bounds. No data, NaN, an unreachable Prometheus or a query
it rejects all fail the check: a verification that saw nothing never passes.
"""

from __future__ import annotations

import math
import os
import time

from gitops_tool.config.stage_checks import Check, expand
from gitops_tool.errors import GitopsError

URL_ENV = "GITOPS_TOOL_PROMETHEUS_URL"
TIMEOUT = 10.0


def prometheus_url(env) -> str:
    url = os.environ.get(URL_ENV) or env.verify.prometheus_url
    if not url:
        raise GitopsError(f"environments.{env.name}.verify: no Prometheus to ask; set verify.prometheus_url in "
                          f"gitops.yaml or ${URL_ENV}")
    return url.rstrip("/")


def failed_checks(env, model: str, now: float | None = None) -> str | None:
    """None when every check holds, else one line naming each failed check and its numbers."""
    url = prometheus_url(env)
    failures = []
    for check in env.verify.checks:
        query = expand(check.query, {"$namespace": env.namespace, "$model": model, "$window": check.window})
        problem = _evaluate(url, check, query, now or time.time())
        if problem:
            failures.append(f"{check.name}: {problem}")
    return "; ".join(failures) or None


def _evaluate(url: str, check: Check, query: str, now: float) -> str | None:
    import requests

    step = max(1, check.window_seconds // 20)
    params = {"query": query, "start": now - check.window_seconds, "end": now, "step": step}
    try:
        resp = requests.get(f"{url}/api/v1/query_range", params=params, timeout=TIMEOUT)
        body = resp.json()
    except (requests.RequestException, ValueError) as exc:
        return f"Prometheus at {url} did not answer ({type(exc).__name__}: {str(exc).splitlines()[0][:200]})"
    if body.get("status") != "success":
        return f"Prometheus rejected the query ({body.get('errorType')}: {body.get('error')})"
    series = body.get("data", {}).get("result") or []
    values = [float(v) for s in series for _, v in s.get("values", [])]
    if not values:
        return f"no data over the last {check.window} (query: {query})"
    bad = [v for v in values if math.isnan(v) or (check.max is not None and v > check.max)
           or (check.min is not None and v < check.min)]
    if bad:
        worst = max(bad) if check.max is not None else min(bad)
        return (f"{worst:g} over the last {check.window}, needs {check.bound_text()} "
                f"({len(bad)} of {len(values)} points outside)")
    return None
