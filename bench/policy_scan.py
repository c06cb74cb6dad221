"""Policy scan: checkov (Kubernetes framework, offline) over every rendered overlay, and the seed.

    make policy                         # creates .venv-checkov, then runs this
    .venv/bin/python bench/policy_scan.py [--checkov .venv-checkov/bin/checkov] [--json]

checkov runs from its own virtualenv so its pins never touch ours. Exit 1 when any check fails
on our manifests or more than MAX_SKIPS distinct checks are skipped.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SEED = ROOT / "docs" / "security" / "seed-manifests.yaml"
MAX_SKIPS = 5


def run_checkov(checkov: str, folder: Path) -> dict:
    proc = subprocess.run([checkov, "-d", str(folder), "--framework", "kubernetes", "--output", "json",
                           "--skip-download", "--compact"], capture_output=True, text=True, timeout=600)
    if proc.returncode not in (0, 1) or not proc.stdout.strip():
        raise SystemExit(f"checkov failed ({proc.returncode}): {proc.stderr[-2000:]}")
    data = json.loads(proc.stdout)
    report = data[0] if isinstance(data, list) else data
    if "results" not in report:  # checkov reports an empty folder this way
        return {"passed": 0, "failed": 0, "skipped": 0, "failed_ids": {}, "skipped_ids": {}}
    results, summary = report["results"], report["summary"]
    return {
        "passed": summary["passed"], "failed": summary["failed"], "skipped": summary["skipped"],
        "resources": summary["resource_count"], "checkov": summary["checkov_version"],
        "failed_ids": dict(Counter(c["check_id"] for c in results.get("failed_checks", []))),
        "skipped_ids": dict(Counter(c["check_id"] for c in results.get("skipped_checks", []))),
    }


def render_all(out: Path) -> list[str]:
    """Every overlay Argo CD syncs: the platform instances (the MLflow stack) and the serving environments."""
    from gitops_tool.config import load_config
    from gitops_tool.kustomize.render import render

    cfg = load_config(ROOT / "gitops.yaml")
    for target in cfg.targets():
        (out / f"{target.label.replace('/', '-')}.yaml").write_text(render(cfg.root / target.rel_dir))
    return [target.label for target in cfg.targets()]


def scan(checkov: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        ours, seed = Path(tmp, "ours"), Path(tmp, "seed")
        ours.mkdir()
        seed.mkdir()
        envs = render_all(ours)
        (seed / "seed.yaml").write_text(SEED.read_text())
        return {"overlays": envs, "ours": run_checkov(checkov, ours), "seed": run_checkov(checkov, seed)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--checkov", default=str(ROOT / ".venv-checkov" / "bin" / "checkov"))
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = scan(args.checkov)
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print(f"command: {' '.join([sys.executable, *sys.argv])}")
        for side in ("seed", "ours"):
            r = result[side]
            print(f"{side:>5}: {r['resources']} resources: passed {r['passed']}, failed {r['failed']}, "
                  f"skipped {r['skipped']} "
                  f"(distinct skipped checks: {sorted(r['skipped_ids'])})")
            for check, count in sorted(r["failed_ids"].items()):
                print(f"         failed {check} x{count}")
    ours = result["ours"]
    return 1 if ours["failed"] or len(ours["skipped_ids"]) > MAX_SKIPS else 0


if __name__ == "__main__":
    raise SystemExit(main())
