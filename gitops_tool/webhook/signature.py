"""MLflow webhook signatures, the timestamp window and the replay guard."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections import OrderedDict
from collections.abc import Iterable

PREFIX = "v1,"


def sign(secret: str, delivery_id: str, timestamp: str, body: bytes) -> str:
    """The ``X-MLflow-Signature`` value MLflow sends: v1,base64(HMAC-SHA256(id.ts.body))."""
    content = f"{delivery_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), content, hashlib.sha256).digest()
    return PREFIX + base64.b64encode(digest).decode()


def delivery_headers(secret: str, body: bytes, delivery_id: str | None = None,
                     timestamp: int | None = None) -> dict[str, str]:
    """Headers of a delivery exactly as MLflow signs it (for tests and ``webhook test`` tools)."""
    import uuid

    delivery_id = delivery_id or str(uuid.uuid4())
    ts = str(int(time.time()) if timestamp is None else timestamp)
    return {"Content-Type": "application/json", "X-MLflow-Delivery-Id": delivery_id,
            "X-MLflow-Timestamp": ts, "X-MLflow-Signature": sign(secret, delivery_id, ts, body)}


def verify(secrets: Iterable[str], delivery_id: str, timestamp: str, body: bytes, header: str) -> bool:
    """True if any secret signs this delivery; constant-time compare for each."""
    if not header.startswith(PREFIX):
        return False
    given = header.encode()
    ok = False
    for secret in secrets:  # check all, so timing does not tell which secret matched
        ok |= hmac.compare_digest(sign(secret, delivery_id, timestamp, body).encode(), given)
    return ok


def timestamp_skew(timestamp: str, now: float | None = None) -> float:
    """Seconds between the delivery timestamp and now (positive: from the past)."""
    return (time.time() if now is None else now) - int(timestamp)


class ReplayGuard:
    """Delivery ids seen within ``ttl`` seconds, at most ``capacity`` of them (oldest evicted).

    ``ttl`` should cover the timestamp window on both sides: older deliveries are refused
    by their timestamp, so forgetting their ids is safe.
    """

    def __init__(self, ttl: float, capacity: int):
        self.ttl, self.capacity = ttl, capacity
        self._seen: OrderedDict[str, float] = OrderedDict()
        self._lock = threading.Lock()

    def claim(self, delivery_id: str) -> bool:
        """Record the id; False if it was already seen (a replay or a concurrent duplicate)."""
        now = time.monotonic()
        with self._lock:
            self._expire(now)
            if delivery_id in self._seen:
                return False
            self._seen[delivery_id] = now
            if len(self._seen) > self.capacity:
                self._seen.popitem(last=False)
            return True

    def release(self, delivery_id: str) -> None:
        """Forget an id we did not act on (503), so MLflow's retry with the same id gets in."""
        with self._lock:
            self._seen.pop(delivery_id, None)

    def _expire(self, now: float) -> None:
        while self._seen:
            oldest, at = next(iter(self._seen.items()))
            if now - at <= self.ttl:
                return
            del self._seen[oldest]

    def __len__(self) -> int:
        return len(self._seen)
