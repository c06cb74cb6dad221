"""Run git through GitPython's command wrapper with a fixed, parseable environment."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import git

from gitops_tool.errors import GitopsError

# LC_ALL=C keeps messages parseable; no prompts so a missing credential fails
# instead of hanging a webhook worker; literal pathspecs so file names with
# '*' or '[' are never globbed.
GIT_ENV: dict[str, str] = {
    "LC_ALL": "C",
    "LANGUAGE": "C",
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_LITERAL_PATHSPECS": "1",
}
NETWORK_TIMEOUT = 300.0  # seconds for clone/fetch/push; a hung remote must not hang us

_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")


def redact(text: str) -> str:
    """Hide user:token@ in URLs so credentials never reach error messages."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


@dataclass(frozen=True)
class Result:
    status: int
    out: str
    err: str

    @property
    def ok(self) -> bool:
        return self.status == 0


def run(
    cmd: git.Git,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Result:
    """Run ``git <args>``; never raises for a non-zero exit (callers classify)."""
    status, out, err = cmd.execute(
        ["git", *args],
        with_extended_output=True,
        with_exceptions=False,
        env={**GIT_ENV, **(env or {})},
        kill_after_timeout=timeout,
    )
    return Result(int(status or 0), out or "", err or "")


def clean_stderr(err: str, limit: int = 2000) -> str:
    """git's stderr without hint noise and the padding git adds after 'remote:' lines."""
    lines = [ln.rstrip() for ln in err.splitlines() if not ln.startswith("hint:")]
    text = redact("\n".join(ln for ln in lines if ln.strip()))
    return text if len(text) <= limit else text[:limit] + " ..."


def as_posix_rel(root: Path, path: Path | str) -> str:
    """Path relative to the repo root (relative inputs are already relative to root)."""
    p = Path(path)
    if p.is_absolute():
        try:
            p = p.resolve().relative_to(root)
        except ValueError:
            raise GitopsError(f"{path} is outside the git repository {root}") from None
    return p.as_posix() or "."
