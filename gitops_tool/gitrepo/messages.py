"""Commit messages with Git trailers: build them, and read them back from `git log`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

from gitops_tool.errors import GitopsError

_TRAILER_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9-]*$")

# One record per commit: RS, then fields separated by NUL. The trailer block is
# produced by git itself (`only,unfold`), so we parse exactly what
# `git interpret-trailers --parse` would report.
RECORD_SEP = "\x1e"
FIELD_SEP = "\x00"
LOG_FORMAT = "%x1e%H%x00%ct%x00%s%x00%(trailers:only,unfold)"


@dataclass(frozen=True)
class CommitRecord:
    sha: str
    subject: str
    timestamp: datetime  # committer time, UTC
    trailers: dict[str, str] = field(default_factory=dict)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def build_message(subject: str, body: str = "", trailers: dict[str, str] | None = None) -> str:
    """`subject\\n\\nbody\\n\\nKey: value...`; trailer values are folded to one line."""
    subject = _one_line(subject)
    if not subject:
        raise GitopsError("commit subject is empty")
    parts = [subject]
    if body.strip():
        parts.append(body.strip("\n").rstrip())
    if trailers:
        lines = []
        for key, value in trailers.items():
            if not _TRAILER_KEY.match(key):
                raise GitopsError(f"invalid git trailer key {key!r}: use letters, digits and '-'")
            lines.append(f"{key}: {_one_line(str(value))}")
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"


def parse_trailer_block(block: str) -> dict[str, str]:
    """`Key: value` lines -> dict; a repeated key keeps its last value."""
    out: dict[str, str] = {}
    for line in block.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            out[key.strip()] = value.strip()
    return out


def parse_log(output: str) -> list[CommitRecord]:
    records = []
    for chunk in output.split(RECORD_SEP):
        if not chunk.strip():
            continue
        sha, ts, subject, block = (chunk.split(FIELD_SEP, 3) + ["", "", ""])[:4]
        records.append(
            CommitRecord(
                sha=sha.strip(),
                subject=subject,
                timestamp=datetime.fromtimestamp(int(ts), tz=timezone.utc),
                trailers=parse_trailer_block(block),
            )
        )
    return records
