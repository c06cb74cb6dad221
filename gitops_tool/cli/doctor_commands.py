"""doctor: what the clusters must provide, offline or checked live. Plain functions returning an exit code."""

from __future__ import annotations

import json

from gitops_tool.cli.output import err, out


def doctor(*, config: str | None, cluster: bool, target: str, context: str | None, kubeconfig: str | None,
           output: str) -> int:
    from gitops_tool.cli.cluster_commands import _config
    from gitops_tool.cluster.doctor import check, requirements

    cfg = _config(config)
    if not cluster:
        reqs = requirements(cfg)
        if output == "json":
            out(json.dumps([{"what": r.what, "minimum": r.minimum, "needed_for": r.needed_for,
                             "clusters": list(r.clusters), "checks": [c.describe() for c in r.checks]}
                            for r in reqs], indent=2))
            return 0
        for r in reqs:
            out(f"{r.what} ({r.minimum}) on {', '.join(r.clusters)}: {r.needed_for}")
            for c in r.checks:
                out(f"    - {c.describe()}")
        out("check them with: gitops-tool doctor --cluster [--for CLUSTER] [--context CTX]")
        return 0
    from gitops_tool.cluster.api import connect

    results = check(connect(context, kubeconfig), cfg, target)
    if output == "json":
        out(json.dumps([{"what": r.what, "check": c.describe(), "ok": p is None, "problem": p}
                        for r, c, p in results], indent=2))
    else:
        for r, c, problem in results:
            line = f"{'ok     ' if problem is None else 'MISSING'} {r.what}: {c.describe()}"
            (out if problem is None else err)(line + ("" if problem is None else f": {problem}"))
        missing = sum(1 for *_, p in results if p is not None)
        out(f"cluster {target}: {len(results) - missing} of {len(results)} checks ok")
    return 1 if any(p is not None for *_, p in results) else 0
