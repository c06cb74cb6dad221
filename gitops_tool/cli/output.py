"""Printing helpers for commands (plain functions, no click)."""

from __future__ import annotations

import json
import sys
from typing import Any


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")


def err(text: str) -> None:
    sys.stderr.write(text + "\n")


def out_json(data: Any) -> None:
    out(json.dumps(data, indent=2, sort_keys=False))


def error_json(message: str, *, hint: str | None = None, retryable: bool = False, exit_code: int = 1) -> None:
    """The `-o json` shape of a failure, on stdout where a script reads the result."""
    out_json({"ok": False, "error": {"message": message, "hint": hint, "retryable": retryable,
                                     "exit_code": exit_code}})
