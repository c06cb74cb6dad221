"""Run the receiver under uvicorn: ``serve`` for the CLI, ``running`` for tests and embedding."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

from gitops_tool.errors import GitopsError
from gitops_tool.webhook import logs
from gitops_tool.webhook.app import WebhookApp, create_app
from gitops_tool.webhook.handlers import build_handler
from gitops_tool.webhook.settings import ReceiverSettings


def _uvicorn_server(app: WebhookApp, host: str, port: int):  # -> uvicorn.Server
    import uvicorn

    config = uvicorn.Config(
        app, host=host, port=port, lifespan="on", access_log=False, log_config=None,
        # Requests finish in milliseconds; the in-flight *job* is waited for by app.close().
        timeout_graceful_shutdown=5, timeout_keep_alive=5, limit_concurrency=200,
    )
    return uvicorn.Server(config)


def serve(settings: ReceiverSettings) -> None:
    """Serve until SIGTERM/SIGINT; then stop accepting, let the in-flight job finish (bounded).

    Raises GitopsError for bad settings (no secret, missing repo/token) or a busy port.
    """
    settings.check()
    logs.configure()
    from gitops_tool.promotion.workspace import sweep_stale_clones

    if removed := sweep_stale_clones():
        logs.event(logging.INFO, "removed stale temporary clones", count=removed)
    app = create_app(settings, build_handler(settings))
    drift = _drift_monitor(app, settings)
    server = _uvicorn_server(app, settings.host, settings.port)
    logs.event(logging.INFO, "webhook receiver starting", mode=settings.mode, host=settings.host,
               port=settings.port, workers=settings.workers, queue_size=settings.queue_size)
    with _absorb_resignal():
        try:
            server.run()  # uvicorn handles the signals; its lifespan shutdown calls app.close()
        except SystemExit:  # uvicorn exits 1 when it cannot bind
            pass
    if not server.started:
        raise GitopsError(f"webhook receiver could not listen on {settings.host}:{settings.port}",
                          hint="is the port in use? see the log line above")
    app.close(0)  # no-op after the lifespan shutdown; covers a failed lifespan
    if drift is not None:
        drift.stop()
    logs.event(logging.INFO, "webhook receiver stopped")


def _drift_monitor(app: WebhookApp, settings: ReceiverSettings):  # -> DriftMonitor | None
    """Promote mode has a repo to clone: export gitops_drift from a periodic check."""
    if settings.mode != "promote" or not settings.repo_url or settings.drift_interval <= 0:
        return None
    from gitops_tool.webhook.drift import DriftMonitor, clone_check

    monitor = DriftMonitor(app.metrics.registry, clone_check(settings.repo_url, settings.branch,
                                                             settings.tracking_uri), settings.drift_interval)
    monitor.start()
    return monitor


@contextlib.contextmanager
def _absorb_resignal() -> Iterator[None]:
    """uvicorn re-raises SIGTERM/SIGINT after a graceful stop; make that a normal return (exit 0)."""
    import signal

    signals = (signal.SIGINT, signal.SIGTERM)
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in signals}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def running(app: WebhookApp, host: str = "127.0.0.1", port: int = 0,
            timeout: float = 10.0) -> Iterator[str]:
    """Serve ``app`` from a background thread on real sockets; yield its base URL."""
    import socket

    # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only then (else keep-alive replies wait 40 ms)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    server = _uvicorn_server(app, host, sock.getsockname()[1])
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise GitopsError("webhook receiver thread did not start")
        time.sleep(0.01)
    try:
        yield f"http://{host}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout + app.settings.shutdown_timeout)
        sock.close()
