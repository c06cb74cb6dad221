"""Write the CRD JSON Schemas gitops-tool ships (gitops_tool/validate/schemas/) from a schema folder.

    python tools/package_crd_schemas.py [SOURCE]   # default: ../shared/schemas beside the repository

SOURCE holds `<group>/<kind>_<version>.json` files converted from upstream CRDs, each naming its upstream
in `$comment` ("... from <owner>/<repo> <tag> (<commit>) <path>"). The packaged copies drop `description`
(documentation, not validation) and whitespace, and SOURCES.json records each one's upstream, version
and licence. tests/test_packaged_schemas.py re-runs this and compares.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
TARGET = REPO / "gitops_tool" / "validate" / "schemas"
DEFAULT_SOURCE = REPO.parent / "shared" / "schemas"
# Every upstream is Apache-2.0 (its LICENSE at the tag); the licence text ships as LICENSE-Apache-2.0.txt.
LICENCES = {"argoproj/argo-cd": "Apache-2.0", "kserve/kserve": "Apache-2.0",
            "prometheus-operator/prometheus-operator": "Apache-2.0", "external-secrets/external-secrets": "Apache-2.0",
            "bitnami-labs/sealed-secrets": "Apache-2.0", "kubernetes-sigs/gateway-api": "Apache-2.0",
            "envoyproxy/gateway": "Apache-2.0"}
UPSTREAM = re.compile(r"from (?P<repo>[\w.-]+/[\w.-]+) (?P<tag>\S+) \((?P<commit>[0-9a-f]{40})\) (?P<path>\S+)")


def strip_descriptions(node):
    """Drop `description` annotations; a property *named* description (under `properties`) stays."""
    if isinstance(node, dict):
        return {k: (strip_properties(v) if k == "properties" else strip_descriptions(v))
                for k, v in node.items() if not (k == "description" and isinstance(v, str))}
    if isinstance(node, list):
        return [strip_descriptions(v) for v in node]
    return node


def strip_properties(props):
    return {name: strip_descriptions(sub) for name, sub in props.items()} if isinstance(props, dict) else props


def package(source: Path, target: Path) -> dict[str, dict]:
    sources = {}
    for path in sorted(source.glob("*/*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))
        match = UPSTREAM.search(schema.get("$comment", ""))
        if not match or match["repo"] not in LICENCES:
            raise SystemExit(f"{path}: $comment names no known upstream: {schema.get('$comment')!r}")
        rel = path.relative_to(source).as_posix()
        out = target / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(strip_descriptions(schema), separators=(",", ":"), sort_keys=True) + "\n",
                       encoding="utf-8")
        sources[rel] = {"kind": schema["properties"]["kind"]["enum"][0],
                        "apiVersion": schema["properties"]["apiVersion"]["enum"][0],
                        "upstream": f"https://github.com/{match['repo']}", "version": match["tag"],
                        "commit": match["commit"], "path": match["path"], "licence": LICENCES[match["repo"]]}
    (target / "SOURCES.json").write_text(json.dumps(sources, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return sources


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_SOURCE
    written = package(src, TARGET)
    print(f"{len(written)} schemas from {src} into {TARGET.relative_to(REPO)}")
