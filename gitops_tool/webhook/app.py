"""The receiver as a plain ASGI app: verify, dedupe, route, enqueue; reply in milliseconds.

No git or registry call happens on the request path: accepted deliveries become jobs for
the worker pool. Status codes: 202 accepted, 200 ignored, 400 malformed or outside the
timestamp window, 401 bad or missing signature, 409 replayed delivery id, 413 body too large,
503 queue full (MLflow retries 5xx with the same delivery id).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from typing import Any, Awaitable, Callable

from gitops_tool.config.model import Config
from gitops_tool.webhook.events import LiveAliasMap, Malformed, parse
from gitops_tool.webhook.jobs import Handler, Job, PairScheduler
from gitops_tool.webhook.logs import event
from gitops_tool.webhook.metrics import Metrics
from gitops_tool.webhook.settings import ReceiverSettings
from gitops_tool.webhook.signature import ReplayGuard, timestamp_skew, verify
from gitops_tool.webhook.worker import WorkerPool

WEBHOOK_PATH = "/webhooks/mlflow"
_ID = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
_TS = re.compile(r"^[0-9]{1,12}$")
DRAIN_FACTOR = 4  # an oversized body is read and dropped up to this many times max_body

Send = Callable[[dict[str, Any]], Awaitable[None]]
Receive = Callable[[], Awaitable[dict[str, Any]]]


class Reject(Exception):
    def __init__(self, status: int, outcome: str, reason: str):
        super().__init__(reason)
        self.status, self.outcome, self.reason = status, outcome, reason


class _Disconnected(Exception):
    pass


class WebhookApp:
    """ASGI callable; also owns the scheduler, the worker pool and the metrics."""

    def __init__(self, settings: ReceiverSettings, handler: Handler, config: Config):
        self.settings = settings
        self.routes = LiveAliasMap(settings.config_path, config)
        self.scheduler = PairScheduler(settings.queue_size)
        self.metrics = Metrics(self.scheduler.depth)
        self.pool = WorkerPool(handler, self.scheduler, self.metrics, workers=settings.workers,
                               max_attempts=settings.max_attempts, backoff=settings.backoff,
                               max_backoff=settings.max_backoff)
        # Ids older than the window are refused by timestamp, so remember them a bit longer.
        self.replays = ReplayGuard(2 * settings.timestamp_window + 60, settings.replay_capacity)

    def start(self) -> None:
        self.pool.start()

    def close(self, timeout: float | None = None) -> bool:
        return self.pool.stop(self.settings.shutdown_timeout if timeout is None else timeout)

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            try:
                await self._http(scope, receive, send)
            except _Disconnected:
                pass

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self.start()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await asyncio.to_thread(self.close)  # bounded by shutdown_timeout
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == WEBHOOK_PATH:
            if method != "POST":
                self.metrics.delivery("malformed")
                await _json(send, 405, {"error": "use POST"}, [(b"allow", b"POST")])
                return
            await self._delivery(scope, receive, send)
        elif path in ("/healthz", "/readyz", "/metrics") and method == "GET":
            await self._probe(path, send)
        else:
            await _json(send, 404, {"error": f"no route {method} {path[:100]}"})

    async def _probe(self, path: str, send: Send) -> None:
        if path == "/healthz":
            await _json(send, 200, {"status": "ok"})
        elif path == "/readyz":
            problems = [p for p, bad in (("workers not running", not self.pool.alive()),
                                         ("queue full", self.scheduler.full())) if bad]
            await _json(send, 503 if problems else 200,
                        {"status": "not ready" if problems else "ready", "problems": problems,
                         "queue_depth": self.scheduler.depth()})
        else:
            body, content_type = self.metrics.render()
            await _send(send, 200, body, content_type.encode())

    async def _delivery(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        delivery_id = headers.get("x-mlflow-delivery-id", "")[:200] or None
        try:
            body = await self._read_body(headers, receive)
            job = self._accept(headers, body)
        except Reject as rej:
            self.metrics.delivery(rej.outcome)
            level = logging.INFO if rej.outcome == "ignored" else logging.WARNING
            event(level, f"delivery {rej.outcome}: {rej.reason}", outcome=rej.outcome,
                  delivery_id=delivery_id, status=rej.status)
            status = "ignored" if rej.outcome == "ignored" else "rejected"
            extra = [(b"retry-after", b"5")] if rej.status == 503 else []
            await _json(send, rej.status, {"status": status, "reason": rej.reason}, extra)
            return
        self.metrics.delivery("accepted")
        event(logging.INFO, "delivery accepted", outcome="accepted", queue_depth=self.scheduler.depth(),
              coalesced=bool(job.superseded) or None, **job.fields())
        await _json(send, 202, {"status": "accepted", "delivery_id": job.delivery_id, "model": job.model,
                                "alias": job.alias, "version": job.version, "environment": job.env})

    async def _read_body(self, headers: dict[str, str], receive: Receive) -> bytes:
        limit = self.settings.max_body
        declared = headers.get("content-length")
        if declared is not None and not declared.isdigit():
            raise Reject(400, "malformed", "Content-Length is not a number")
        if declared is not None and int(declared) > limit:
            await _drain(receive, limit * DRAIN_FACTOR)
            raise Reject(413, "too_large", f"body of {declared} bytes exceeds {limit}")
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > limit:  # chunked or lying Content-Length: enforce while reading
                await _drain(receive, limit * DRAIN_FACTOR - size)
                raise Reject(413, "too_large", f"body exceeds {limit} bytes")
            chunks.append(chunk)
            if not message.get("more_body"):
                return b"".join(chunks)

    def _accept(self, headers: dict[str, str], body: bytes) -> Job:
        """Check one delivery in order: headers, signature, window, replay, shape, mapping."""
        delivery_id = headers.get("x-mlflow-delivery-id", "")
        timestamp = headers.get("x-mlflow-timestamp", "")
        signature = headers.get("x-mlflow-signature")
        if not _ID.match(delivery_id) or not _TS.match(timestamp):
            raise Reject(400, "malformed", "missing or invalid X-MLflow-Delivery-Id/X-MLflow-Timestamp")
        if not signature or not verify(self.settings.secrets, delivery_id, timestamp, body, signature):
            raise Reject(401, "unauthorized", "missing or invalid X-MLflow-Signature")
        skew, window = timestamp_skew(timestamp), self.settings.timestamp_window
        if abs(skew) > window:
            when = "old" if skew > 0 else "in the future"
            raise Reject(400, "stale", f"timestamp {abs(skew):.0f} s {when} (window {window:g} s)")
        if not self.replays.claim(delivery_id):
            raise Reject(409, "replayed", f"delivery {delivery_id} was already received")
        try:
            return self._route(delivery_id, int(timestamp), body)
        except Reject as rej:
            if rej.status >= 500:  # not acted on: MLflow's retry reuses the id and must get in
                self.replays.release(delivery_id)
            raise

    def _route(self, delivery_id: str, timestamp: int, body: bytes) -> Job:
        try:
            ev = parse(body)
        except Malformed as exc:
            raise Reject(400, "malformed", str(exc)) from None
        env, reason = self.routes.route(ev)
        if env is None:
            raise Reject(200, "ignored", reason)
        # The header is int(time.time()): up to 1 s early. Prefer the body's sub-second timestamp
        # (signed with it) when the two agree; it feeds gitops_alias_to_commit_seconds.
        sent = ev.sent_at if ev.sent_at is not None and abs(ev.sent_at - timestamp) < 2 else float(timestamp)
        job = Job(delivery_id, str(ev.data["name"]), str(ev.data["alias"]), str(ev.data["version"]),
                  env, sent)
        queued = self.scheduler.put(job)
        if queued is None:
            raise Reject(503, "queue_full", f"queue full ({self.settings.queue_size} jobs); retry later")
        if queued == "replaced":
            self.metrics.coalesced.inc()
        return job


async def _drain(receive: Receive, budget: int) -> None:
    """Read and drop up to ``budget`` bytes so the client can read our 413 cleanly."""
    while budget > 0:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        budget -= len(message.get("body", b""))
        if not message.get("more_body"):
            return


async def _json(send: Send, status: int, doc: dict[str, Any],
                headers: list[tuple[bytes, bytes]] | None = None) -> None:
    await _send(send, status, json.dumps(doc).encode(), b"application/json", headers)


async def _send(send: Send, status: int, body: bytes, content_type: bytes,
                headers: list[tuple[bytes, bytes]] | None = None) -> None:
    head = [(b"content-type", content_type), (b"content-length", str(len(body)).encode()),
            *(headers or [])]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


def create_app(settings: ReceiverSettings, handler: Handler, config: Config | None = None) -> WebhookApp:
    """Build the receiver app; workers start with the ASGI lifespan (or ``app.start()``)."""
    from gitops_tool.config import load_config

    settings.check_common()
    return WebhookApp(settings, handler, config or load_config(settings.config_path))
