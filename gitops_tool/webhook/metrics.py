"""Prometheus metrics on a registry of their own, so several apps can live in one process."""

from __future__ import annotations

from typing import Callable

DELIVERY_OUTCOMES = ("accepted", "ignored", "unauthorized", "stale", "replayed", "too_large",
                     "malformed", "queue_full")
PROMOTION_RESULTS = ("committed", "skipped", "failed", "retried", "dispatched")
# Alias move -> Git commit: a clone, an edit and a push take seconds; retries take minutes.
LATENCY_BUCKETS = (0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)


class Metrics:
    def __init__(self, queue_depth: Callable[[], float]):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        self.deliveries = Counter(
            "gitops_webhook_deliveries", "Webhook deliveries by outcome", ["outcome"],
            registry=self.registry)
        for outcome in DELIVERY_OUTCOMES:
            self.deliveries.labels(outcome)  # export zeros, so rate() works from the start
        self.promotions = Counter(
            "gitops_promotions", "Promotion jobs by environment and result", ["env", "result"],
            registry=self.registry)
        self.queue_depth = Gauge(
            "gitops_webhook_queue_depth", "Jobs waiting to start", registry=self.registry)
        self.queue_depth.set_function(queue_depth)
        self.alias_to_commit = Histogram(
            "gitops_alias_to_commit_seconds",
            "From the delivery timestamp (alias moved) to the promotion commit",
            buckets=LATENCY_BUCKETS, registry=self.registry)
        self.coalesced = Counter(
            "gitops_webhook_coalesced", "Waiting jobs whose event a newer delivery for the same "
            "(model, environment) replaced", registry=self.registry)

    def delivery(self, outcome: str) -> None:
        self.deliveries.labels(outcome).inc()

    def promotion(self, env: str, result: str) -> None:
        self.promotions.labels(env, result).inc()

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST
