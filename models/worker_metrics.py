"""The worker's Prometheus metrics, in a registry of their own (one per app: tests and several
apps in one process never share counters)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram

# request latencies of a cache hit are around a millisecond, a miss tens of milliseconds
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class WorkerMetrics:
    """Request latency per route and status, cache lookups, degraded answers."""

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

    def cache_hit_ratio(self) -> float | None:
        """Hits over lookups so far (None before the first lookup)."""
        hits = self.registry.get_sample_value("streamrec_cache_lookups_total", {"result": "hit"})
        total = sum(
            self.registry.get_sample_value("streamrec_cache_lookups_total", {"result": r}) or 0.0
            for r in ("hit", "miss", "error")
        )
        return None if total == 0 else (hits or 0.0) / total
