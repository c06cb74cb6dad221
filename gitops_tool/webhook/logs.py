"""One JSON object per line on stderr: ts, level, msg and the delivery's fields."""

from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import Any

LOGGER_NAME = "gitops_tool.webhook"
log = logging.getLogger(LOGGER_NAME)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def event(level: int, msg: str, **fields: Any) -> None:
    """Log ``msg`` with structured fields (None values dropped)."""
    log.log(level, msg, extra={"fields": {k: v for k, v in fields.items() if v is not None}})


def configure(stream: Any = None, level: int = logging.INFO) -> None:
    """Send the receiver's logs (and uvicorn's errors) to stderr as JSON lines; idempotent."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter())
    for name in (LOGGER_NAME, "uvicorn.error", "gitops_tool.promotion"):  # promotion: tag/refresh warnings
        logger = logging.getLogger(name)
        logger.handlers = [handler]
        logger.setLevel(level)
        logger.propagate = False
