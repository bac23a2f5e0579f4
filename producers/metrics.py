"""The producers' metrics: counters kept by the core, read as a frozen snapshot."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

THROTTLED = "ProvisionedThroughputExceededException"


@dataclass(frozen=True)
class ProducerMetrics:
    """Counters since the producer was made.

    ``sent``/``retried``/``failed`` count events (``failed`` by error code); ``throttled``
    counts entries Kinesis answered with ``ProvisionedThroughputExceededException``;
    ``call_errors`` counts whole calls that raised (timeouts, connection errors), by code, and
    ``maybe_duplicated`` the events those calls may have written before being resent.
    ``paced`` counts times the rate limiter held a shard back. Latencies are in seconds:
    ``call_latency`` per PutRecords call, ``put_latency`` from ``put`` to the event's outcome.
    ``max_buffered_*`` are the high-water marks of events held (buffered, in flight, waiting).
    """

    sent: int = 0
    retried: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    throttled: int = 0
    call_errors: Counter[str] = field(default_factory=Counter)
    maybe_duplicated: int = 0
    paced: int = 0
    calls: int = 0
    records_per_call_max: int = 0
    records_per_call_mean: float = 0.0
    bytes_per_call_mean: float = 0.0
    call_latency_mean: float = 0.0
    call_latency_max: float = 0.0
    put_latency_mean: float = 0.0
    put_latency_max: float = 0.0
    buffered_events: int = 0
    buffered_bytes: int = 0
    max_buffered_events: int = 0
    max_buffered_bytes: int = 0


class MetricsRecorder:
    """The mutable counters behind ``ProducerMetrics``; updated by the core only."""

    def __init__(self) -> None:
        self.sent = self.retried = self.throttled = self.maybe_duplicated = self.paced = 0
        self.failed: Counter[str] = Counter()
        self.call_errors: Counter[str] = Counter()
        self.calls = self.call_records = self.call_bytes = self.records_per_call_max = 0
        self.call_latency_sum = self.call_latency_max = 0.0
        self.outcomes = 0  # events resolved; the ledger counts them and their put latency
        self.put_latency_sum = self.put_latency_max = 0.0
        self.max_buffered_events = self.max_buffered_bytes = 0

    def call(self, records: int, nbytes: int, latency: float) -> None:
        """Count one PutRecords call of ``records`` entries and ``nbytes`` bytes."""
        self.calls += 1
        self.call_records += records
        self.call_bytes += nbytes
        self.records_per_call_max = max(self.records_per_call_max, records)
        self.call_latency_sum += latency
        self.call_latency_max = max(self.call_latency_max, latency)

    def snapshot(self, buffered_events: int, buffered_bytes: int) -> ProducerMetrics:
        """A frozen copy."""
        calls, outcomes = max(self.calls, 1), max(self.outcomes, 1)
        return ProducerMetrics(
            sent=self.sent,
            retried=self.retried,
            failed=Counter(self.failed),
            throttled=self.throttled,
            call_errors=Counter(self.call_errors),
            maybe_duplicated=self.maybe_duplicated,
            paced=self.paced,
            calls=self.calls,
            records_per_call_max=self.records_per_call_max,
            records_per_call_mean=self.call_records / calls,
            bytes_per_call_mean=self.call_bytes / calls,
            call_latency_mean=self.call_latency_sum / calls,
            call_latency_max=self.call_latency_max,
            put_latency_mean=self.put_latency_sum / outcomes,
            put_latency_max=self.put_latency_max,
            buffered_events=buffered_events,
            buffered_bytes=buffered_bytes,
            max_buffered_events=self.max_buffered_events,
            max_buffered_bytes=self.max_buffered_bytes,
        )
