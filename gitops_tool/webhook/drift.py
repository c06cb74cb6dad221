"""A periodic registry/Git drift check in the receiver, exported as the `gitops_drift` gauge.

Webhook delivery is best-effort, so an alias can move without a commit following. Every
``interval`` seconds this thread does what `gitops-tool status` does (promotion.status.collect)
on a fresh shallow clone and sets gitops_drift{model,env,alias} to 1 where the registry alias
points at a version Git does not deploy, 0 where it agrees. The RegistryGitDrift alert fires
when a 1 lasts; `gitops-tool reconcile` (or a new webhook) clears it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from gitops_tool.errors import GitopsError
from gitops_tool.webhook.logs import event

Check = Callable[[], list]  # -> list[promotion.status.EnvStatus]


class DriftMonitor:
    def __init__(self, registry, check: Check, interval: float = 120.0):
        from prometheus_client import Counter, Gauge

        self.check, self.interval = check, interval
        self.drift = Gauge("gitops_drift", "1 when the registry alias points at a version Git does not deploy",
                           ["model", "env", "alias"], registry=registry)
        self.last_success = Gauge("gitops_drift_check_last_success_timestamp_seconds",
                                  "Unix time of the last drift check that completed", registry=registry)
        self.errors = Counter("gitops_drift_check_errors", "Drift checks that failed", registry=registry)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._seen: set[tuple[str, str, str]] = set()

    def run_once(self) -> bool:
        """One check; False (and a log line) when the clone or the registry failed."""
        try:
            rows = self.check()
        except GitopsError as exc:
            self.errors.inc()
            event(logging.WARNING, f"drift check failed: {str(exc).splitlines()[0]}", outcome="drift_error")
            return False
        current = set()
        for row in rows:
            error = getattr(row, "error", None)
            if error:
                self.errors.inc()
                event(logging.WARNING, f"drift check for {row.model} in {row.env} failed: {error}",
                      outcome="drift_error")
            for alias in row.aliases:
                key = (row.model, row.env, alias)
                current.add(key)
                if not error:  # unknown: keep the last value rather than claim agreement
                    self.drift.labels(*key).set(1 if alias in row.drift else 0)
        for key in self._seen - current:  # an alias unmapped from gitops.yaml: drop its series
            self.drift.remove(*key)
        self._seen = current
        self.last_success.set(time.time())
        drifting = [f"{r.model}@{a}->{r.env}" for r in rows for a in r.drift]
        if drifting:
            event(logging.WARNING, f"registry/Git drift: {', '.join(drifting)}", outcome="drift")
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception as exc:  # noqa: BLE001 - a bug must not kill the thread silently
                self.errors.inc()
                event(logging.ERROR, f"drift check crashed: {exc!r}", outcome="drift_error")
            self._stop.wait(self.interval)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="drift-check", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


def clone_check(repo_url: str, branch: str | None, tracking_uri: str | None) -> Check:
    """Collect status rows from a fresh shallow clone of the GitOps repo and the registry."""

    def check() -> list:
        from gitops_tool.promotion.status import collect
        from gitops_tool.promotion.workspace import open_workspace
        from gitops_tool.registry import RegistryClient, resolve_tracking_uri

        with open_workspace(repo_url=repo_url, branch=branch) as ws:
            uri = resolve_tracking_uri(tracking_uri, ws.cfg.mlflow.get("tracking_uri"))
            with RegistryClient(uri, retries=1, timeout=10) as client:
                rows, _ = collect(ws.cfg, client)
        if rows and all(getattr(r, "error", None) for r in rows):
            raise GitopsError(f"registry: {rows[0].error}")
        return rows  # a model the registry cannot answer for has `error` on its rows; the rest count

    return check
