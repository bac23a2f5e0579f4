"""The worker's Prometheus metrics, in a registry of their own (one per app: tests and several
apps in one process never share counters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

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


def _nan_if_none(value: float | None) -> float:
    return float("nan") if value is None else value
