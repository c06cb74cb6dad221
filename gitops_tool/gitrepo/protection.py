"""Name the GitHub rule behind a refused push, from the remote's rejection text.

GitHub answers a push to a protected branch on stderr, e.g. (classic branch protection)

    remote: error: GH006: Protected branch update failed for refs/heads/main.
    remote: error: Changes must be made through a pull request.

or (repository rulesets)

    remote: error: GH013: Repository rule violations found for refs/heads/main.
    remote: - Changes must be made through a pull request.
"""

from __future__ import annotations

import re

_CODE = re.compile(r"(GH006|GH013):\s*(Protected branch update failed|Repository rule violations found)"
                   r"(?: for (?P<ref>\S+?))?\.?\s*$")
_RULE = re.compile(r"^(?:remote:\s*)?(?:error:\s*|-\s+)(?P<rule>\S.*?)\s*$")
_KIND = {"GH006": "branch protection", "GH013": "repository ruleset"}


def protection_rule(stderr: str) -> str | None:
    """'branch protection on refs/heads/main (GH006): <rule>; <rule>', or None when GitHub's text is absent."""
    lines = stderr.splitlines()
    for i, line in enumerate(lines):
        match = _CODE.search(line)
        if not match:
            continue
        rules = []
        for later in lines[i + 1:]:
            if _CODE.search(later) or "[remote rejected]" in later or later.lstrip().startswith("To "):
                break
            found = _RULE.match(later.strip())
            if found and not found["rule"].startswith("Review all repository rules"):
                rules.append(found["rule"].rstrip("."))
        where = f" on {match['ref']}" if match["ref"] else ""
        named = "; ".join(rules) or "no rule named"
        return f"{_KIND[match[1]]}{where} ({match[1]}): {named}"
    return None
