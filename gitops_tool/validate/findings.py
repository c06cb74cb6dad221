"""The Finding record and the small formatting helpers every check shares."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

MAX_MESSAGE = 300
ERROR = "error"
UNCHECKED = "unchecked"
WARNING = "warning"  # e.g. a placeholder value; `validate --strict` fails on warnings


@dataclass(frozen=True)
class Finding:
    """One problem in one rendered resource; str() is `env: Kind/name: path: message`."""

    env: str
    kind: str
    name: str
    path: str
    message: str
    severity: str = ERROR  # "error" | "unchecked" | "warning"

    def __str__(self) -> str:
        return f"{self.env}: {self.kind}/{self.name}: {self.path}: {self.message}"


def describe(doc: Any) -> tuple[str, str]:
    """(kind, name) of a document, with placeholders for what is missing."""
    if not isinstance(doc, dict):
        return "<not-a-mapping>", "<unnamed>"
    meta = doc.get("metadata") if isinstance(doc.get("metadata"), dict) else {}
    kind = doc.get("kind") if isinstance(doc.get("kind"), str) and doc.get("kind") else "<no-kind>"
    name = meta.get("name") or meta.get("generateName") or "<unnamed>"
    return kind, str(name)


def format_path(parts: Iterable[Any]) -> str:
    """`spec.template.spec.containers[0].image`; the document root is `(root)`."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "(root)"


def shorten(message: str, limit: int = MAX_MESSAGE) -> str:
    """One line, at most `limit` characters."""
    message = " ".join(str(message).split())
    return message if len(message) <= limit else message[: limit - 1] + "\u2026"


def _summary(value: Any) -> str:
    if isinstance(value, dict):
        keys = [str(k) for k in value]
        return "object {" + ", ".join(keys[:5]) + (", ..." if len(keys) > 5 else "") + "}"
    if isinstance(value, list):
        return f"array of {len(value)} item(s)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def schema_message(err: Any) -> str:
    """A jsonschema error's message with a huge offending instance summarised."""
    message = err.message
    head = repr(err.instance)
    if len(head) > 60 and message.startswith(head):
        message = _summary(err.instance) + message[len(head):]
    return shorten(message)
