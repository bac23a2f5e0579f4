"""The worker's Prometheus metrics, in a registry of their own (one per app: tests and several
apps in one process never share counters)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric

# request latencies of a cache hit are around a millisecond, a miss tens of milliseconds
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class WorkerMetrics:
    """Request latency per route and status, cache lookups and hit ratio, degraded answers.

    ``registry`` may hold the process's other collectors (the demo's pipeline, the ingest
    producer): ``/metrics`` serves all of it.
    """

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.requests = Histogram(
            "streamrec_request_seconds",
            "HTTP request latency of the recommender worker.",
            ("route", "status"),
            registry=self.registry,
            buckets=LATENCY_BUCKETS,
        )
        self.cache = Counter(
            "streamrec_cache_lookups",
            "Recommendation cache lookups by result (hit, miss, error).",
            ("result",),
            registry=self.registry,
        )
        self.degraded = Counter(
            "streamrec_degraded_responses",
            "Answers served degraded, by cause (cache_unavailable, features_timeout, "
            "features_error).",
            ("cause",),
            registry=self.registry,
        )

        self.hit_ratio = Gauge(
            "streamrec_cache_hit_ratio",
            "Recommendation cache hits over lookups since the worker started (NaN before the "
            "first lookup).",
            registry=self.registry,
        )
        self.hit_ratio.set_function(lambda: _nan_if_none(self.cache_hit_ratio()))

    def cache_hit_ratio(self) -> float | None:
        """Hits over lookups so far (None before the first lookup)."""
        # from the counter itself: the registry's samples include this ratio's own gauge
        counts = {
            sample.labels["result"]: sample.value
            for family in self.cache.collect()
            for sample in family.samples
            if sample.name == "streamrec_cache_lookups_total"
        }
        total = sum(counts.values())
        return None if total == 0 else counts.get("hit", 0.0) / total


class _Batched(Protocol):
    reads: int
    keys_read: int


class _Reading(Protocol):
    """What ``FeatureReadsCollector`` reads of a ``models.recommender.Recommender``."""

    user_reads: _Batched
    item_reads: _Batched
    item_rows: Any  # ``models.item_rows.ItemRows``: its len() is the rows it keeps


class FeatureReadsCollector:
    """How a recommender reads features: store reads and the keys they carried (their ratio is
    the batch size, ``models.batching``), and the item rows it keeps (``models.item_rows``)."""

    def __init__(self, recommender: _Reading) -> None:
        self._recommender = recommender

    def collect(self) -> Iterable[Metric]:
        """The families, read from the recommender's plain counters at scrape time."""
        r = self._recommender
        reads = CounterMetricFamily(
            "streamrec_feature_reads",
            "Feature store reads (BatchGetItem calls) made for computed answers, by row kind.",
            labels=["kind"],
        )
        keys = CounterMetricFamily(
            "streamrec_feature_keys_read",
            "Rows asked for by those reads (over streamrec_feature_reads: the batch size).",
            labels=["kind"],
        )
        for kind, batched in (("user", r.user_reads), ("item", r.item_reads)):
            reads.add_metric([kind], batched.reads)
            keys.add_metric([kind], batched.keys_read)
        kept = GaugeMetricFamily(
            "streamrec_item_rows_kept", "Item rows the worker keeps for computed answers."
        )
        kept.add_metric([], len(r.item_rows))
        return [reads, keys, kept]


def _nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else value


class RequestTimer:
    """ASGI middleware: each HTTP request's latency, by route template and status.

    A plain ASGI callable rather than Starlette's ``BaseHTTPMiddleware``, which runs every
    request through an extra task and memory streams (a third of a cached answer's cost).
    """

    def __init__(self, app: Any, metrics: WorkerMetrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        """Time one HTTP request; other scopes pass through."""
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_status(message: Any) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self._app(scope, receive, send_status)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            elapsed = time.perf_counter() - started
            self._metrics.requests.labels(route, str(status[0])).observe(elapsed)
