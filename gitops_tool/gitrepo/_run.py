"""Run git as a subprocess with a fixed, parseable environment.

A plain subprocess, not GitPython: the code only ever used GitPython as a command runner, and
importing it cost ~50 ms of every CLI start. Output is decoded as UTF-8 (undecodable bytes kept as
surrogates) and one trailing newline is dropped from stdout and stderr, as before."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

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


@dataclass(frozen=True)
class GitCmd:
    """Where git runs: ``cwd`` (None: the current directory)."""

    cwd: Path | None = None


def run(
    cmd: GitCmd,
    *args: str,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> Result:
    """Run ``git <args>``; never raises for a non-zero exit (callers classify)."""
    try:
        proc = subprocess.run(["git", *args], cwd=cmd.cwd, env={**os.environ, **GIT_ENV, **(env or {})},
                              stdin=subprocess.DEVNULL, capture_output=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return Result(-9, "", f"Timeout: git {' '.join(args[:1])} did not complete in {timeout} secs.")
    except OSError as exc:
        return Result(127, "", f"cannot run git: {exc}")
    return Result(proc.returncode, _text(proc.stdout), _text(proc.stderr))


def _text(data: bytes) -> str:
    text = data.decode("utf-8", "surrogateescape")
    return text[:-1] if text.endswith("\n") else text


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
