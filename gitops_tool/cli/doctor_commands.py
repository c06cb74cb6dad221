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
        _approval_settings(cfg)
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


def _approval_settings(cfg) -> None:
    from gitops_tool.promotion.approval_doctor import settings

    out("\nwho may deploy (approval):")
    for line in settings(cfg):
        out(f"  {line}")
    out("check them with: gitops-tool doctor --approval")


def approval(*, config: str | None, output: str, tracking_uri: str | None) -> int:
    from gitops_tool.cli.cluster_commands import _config
    from gitops_tool.promotion.approval_doctor import check_github, check_registry_auth, settings
    from gitops_tool.registry import resolve_tracking_uri

    cfg = _config(config)
    uri = resolve_tracking_uri(tracking_uri, cfg.mlflow.get("tracking_uri"))
    findings = check_github(cfg) + check_registry_auth(uri)
    if output == "json":
        out(json.dumps({"settings": settings(cfg), "findings": [f.to_json() for f in findings]}, indent=2))
    else:
        for line in settings(cfg):
            out(line)
        out("")
        for f in findings:
            (err if f.status == "problem" else out)(f"{f.status.upper() if f.status == 'problem' else f.status:<8}"
                                                    f"{f.what}: {f.detail}")
    return 1 if any(f.status == "problem" for f in findings) else 0
