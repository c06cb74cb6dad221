"""Where canary, soak and verification outcomes become model-version tags (issue 13, part 1).

INTEGRATION POINT: the `gitops.<env>.*` tag writer lives in another module (its never-raising
`record(client, model, version, env, state, **fields)`). Every canary/soak/verify outcome calls `note`
here, and only here, so wiring it is one line: replace the body with a call to `record`.
States used: canary_started, canary_completed, canary_aborted, verification_failed, soak_blocked.
"""

from __future__ import annotations

import logging

log = logging.getLogger("gitops_tool.promotion.stage_tags")


def note(client, model: str, version: str | None, env: str, state: str, **fields: object) -> None:
    """Never raises: a tag is a report, not a step a promotion can fail on."""
    log.info("%s version %s in %s: %s %s", model, version, env, state, fields)
