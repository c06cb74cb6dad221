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

        self.registry.register(_SideEffects())

    def delivery(self, outcome: str) -> None:
        self.deliveries.labels(outcome).inc()

    def promotion(self, env: str, result: str) -> None:
        self.promotions.labels(env, result).inc()

    def render(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _SideEffects:
    """Counters kept by the promotion's after-push steps (process-wide), read at scrape time."""

    def collect(self):
        from prometheus_client.core import CounterMetricFamily

        from gitops_tool.cluster import refresh
        from gitops_tool.promotion import version_tags

        tags, refreshes = version_tags.counts(), refresh.counts()
        yield CounterMetricFamily("gitops_version_tag_writes", "Deployment-state tags written on model versions",
                                  value=tags["writes"])
        yield CounterMetricFamily("gitops_version_tag_write_failures",
                                  "Deployment-state tag writes that failed (the promotion went on)",
                                  value=tags["failures"])
        yield CounterMetricFamily("gitops_argocd_refresh_requests", "Argo CD refreshes requested after a push",
                                  value=refreshes["requested"])
        yield CounterMetricFamily("gitops_argocd_refresh_failures",
                                  "Argo CD refresh requests that failed (the promotion went on)",
                                  value=refreshes["failures"])

    def describe(self):
        return []
