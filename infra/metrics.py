"""Prometheus plumbing shared by every process: the producers' collector and an HTTP endpoint.

Metrics come from the plain counters components keep (``ProducerMetrics`` here, runner and
processor stats in ``consumers.metrics``): a collector reads them when Prometheus scrapes, so
the components need no metrics library and no registry is global. Each process has one
``CollectorRegistry``, made by the composition root.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.metrics_core import Metric

from producers.metrics import ProducerMetrics


class Measured(Protocol):
    """A producer (``EventProducer``, ``AsyncEventProducer``): a snapshot of its counters."""

    @property
    def metrics(self) -> ProducerMetrics: ...


class ProducerCollector:
    """The SDK producers of a process, by name (label ``producer``)."""

    def __init__(self) -> None:
        self._sources: dict[str, Measured] = {}

    def add(self, name: str, producer: Measured) -> None:
        """Expose ``producer`` under ``name`` (``"ingest"``, ``"demo"``); a name is used once."""
        if name in self._sources:
            raise ValueError(f"a producer named {name!r} is already collected")
        self._sources[name] = producer

    def describe(self) -> Iterable[Metric]:
        """The families, without samples (lets the registry refuse a duplicate name)."""
        return _producer_families()

    def collect(self) -> Iterable[Metric]:
        """Every producer's counters now."""
        families = _producer_families()
        sent, failed, retried, throttled, call_errors, calls, buffered = families
        for name, producer in sorted(self._sources.items()):
            m = producer.metrics
            sent.add_metric([name], m.sent)
            failed.add_metric([name], sum(m.failed.values()))
            retried.add_metric([name], m.retried)
            throttled.add_metric([name], m.throttled)
            call_errors.add_metric([name], sum(m.call_errors.values()))
            calls.add_metric([name], m.calls, m.calls * m.call_latency_mean)
            buffered.add_metric([name], m.buffered_events)
        return families


def _producer_families() -> list[Metric]:
    label = ["producer"]
    return [
        CounterMetricFamily(
            "streamrec_producer_events_sent", "Events Kinesis accepted.", labels=label
        ),
        CounterMetricFamily(
            "streamrec_producer_events_failed",
            "Events given up on (retries exhausted or not retryable); their codes are in the "
            "producer's flush and close results.",
            labels=label,
        ),
        CounterMetricFamily(
            "streamrec_producer_events_retried", "Entries sent again after an error.", labels=label
        ),
        CounterMetricFamily(
            "streamrec_producer_entries_throttled",
            "Entries answered ProvisionedThroughputExceededException.",
            labels=label,
        ),
        CounterMetricFamily(
            "streamrec_producer_call_errors",
            "Whole PutRecords calls that raised (timeouts, connection errors).",
            labels=label,
        ),
        SummaryMetricFamily(
            "streamrec_producer_call_seconds", "PutRecords call latency.", labels=label
        ),
        GaugeMetricFamily(
            "streamrec_producer_buffered_events",
            "Events held now: buffered, in flight or waiting for a retry.",
            labels=label,
        ),
    ]


class MetricsServer:
    """``registry`` in the Prometheus text format on ``http://host:port/metrics`` (any path
    answers), served from a thread of its own from construction until ``close``; ``port=0``
    picks a free port. Collectors run on that thread: they only read counters."""

    def __init__(self, registry: CollectorRegistry, host: str, port: int) -> None:
        self._server, self._thread = start_http_server(port, addr=host, registry=registry)
        self.url = f"http://{host}:{self._server.server_port}/metrics"

    def close(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def __enter__(self) -> MetricsServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
