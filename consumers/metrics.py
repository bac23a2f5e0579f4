"""Prometheus collectors over what the consumers count: the runner's per-shard progress, the
processors' events in and out, the feature writes and the lake's.

Each reads plain stats at scrape time (``prometheus_client`` custom collectors) and keeps no
state, so the components stay free of a metrics library and every registry (one per process,
made by the composition root; one per test) sees its own pipeline only. Scrapes may run on
another thread than the event loop: collectors only read numbers and copy dicts before
iterating them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from typing import Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import Metric

from consumers.features import FeatureProcessor
from consumers.lander import ParquetLander
from consumers.stats import RunnerStats
from feature_store.latency import Latencies


class Counted(Protocol):
    """A processor that counts the events handed to it and those it made durable."""

    @property
    def events_in(self) -> int: ...

    @property
    def events_out(self) -> int: ...


class RunnerCollector:
    """Per shard (label ``shard``): records and events read, dead letters, failed batches and
    throttled reads; lag, iterator age and checkpoint age in seconds; whether it is held."""

    def __init__(self, stats: RunnerStats, clock: Callable[[], float] = time.time) -> None:
        self._stats = stats
        self._clock = clock

    def describe(self) -> Iterable[Metric]:
        """The families, without samples."""
        return list(_runner_families().values())

    def collect(self) -> Iterable[Metric]:
        """Every shard the runner has seen, now (a gauge only once it has a value)."""
        f = _runner_families()
        now = self._clock()
        for shard, p in sorted(list(self._stats.shards.items())):
            labels = [shard]
            f["records"].add_metric(labels, p.records)
            f["events"].add_metric(labels, p.events)
            f["dead"].add_metric(labels, p.poison)
            f["failures"].add_metric(labels, p.errors)
            f["throttles"].add_metric(labels, p.throttles)
            f["held"].add_metric(labels, 1 if p.held else 0)
            if p.millis_behind_latest is not None:
                f["behind"].add_metric(labels, p.millis_behind_latest / 1000)
            if p.iterator_age_ms is not None:
                f["age"].add_metric(labels, p.iterator_age_ms / 1000)
            if p.checkpointed_at is not None:
                f["checkpoint"].add_metric(labels, max(0.0, now - p.checkpointed_at))
        return list(f.values())


def _runner_families() -> dict[str, Metric]:
    shard = ["shard"]
    return {
        "records": CounterMetricFamily(
            "streamrec_consumer_records",
            "Kinesis records read (an aggregated record counts once), poison included.",
            labels=shard,
        ),
        "events": CounterMetricFamily(
            "streamrec_consumer_events", "Valid events decoded from the records.", labels=shard
        ),
        "dead": CounterMetricFamily(
            "streamrec_dead_letters",
            "Records that could not be decoded or validated, sent to the dead-letter prefix.",
            labels=shard,
        ),
        "failures": CounterMetricFamily(
            "streamrec_consumer_batch_failures",
            "Batches that failed and were read again from the checkpoint.",
            labels=shard,
        ),
        "throttles": CounterMetricFamily(
            "streamrec_consumer_get_records_throttled",
            "GetRecords calls refused with ProvisionedThroughputExceeded.",
            labels=shard,
        ),
        "held": GaugeMetricFamily(
            "streamrec_shard_lease_held",
            "1 while this runner holds the shard's lease.",
            labels=shard,
        ),
        "behind": GaugeMetricFamily(
            "streamrec_shard_behind_latest_seconds",
            "MillisBehindLatest of the last GetRecords answer, in seconds.",
            labels=shard,
        ),
        "age": GaugeMetricFamily(
            "streamrec_shard_iterator_age_seconds",
            "Age of the last record read (0 at the tip of the shard).",
            labels=shard,
        ),
        "checkpoint": GaugeMetricFamily(
            "streamrec_shard_checkpoint_age_seconds",
            "Seconds since this runner last checkpointed the shard.",
            labels=shard,
        ),
    }


class ProcessorCollector:
    """Events handed to each processor and events it made durable (label ``processor``)."""

    def __init__(self, processors: Mapping[str, Counted]) -> None:
        self._processors = dict(processors)

    def describe(self) -> Iterable[Metric]:
        """The families, without samples."""
        return _processor_families()

    def collect(self) -> Iterable[Metric]:
        """Every processor's counts now."""
        events_in, events_out = _processor_families()
        for name, processor in sorted(self._processors.items()):
            events_in.add_metric([name], processor.events_in)
            events_out.add_metric([name], processor.events_out)
        return [events_in, events_out]


def _processor_families() -> list[Metric]:
    label = ["processor"]
    return [
        CounterMetricFamily(
            "streamrec_processor_events_in",
            "Events handed to the processor (redeliveries included).",
            labels=label,
        ),
        CounterMetricFamily(
            "streamrec_processor_events_out",
            "Events the processor made durable: applied to the features, landed in the lake.",
            labels=label,
        ),
    ]


class FeatureCollector:
    """The feature processor's writes: rows, conditional-write conflicts, latency per
    ``write_rows`` call, failed cache invalidations."""

    def __init__(self, processor: FeatureProcessor) -> None:
        self._processor = processor

    def describe(self) -> Iterable[Metric]:
        """The families, without samples."""
        return _feature_families(self._processor)

    def collect(self) -> Iterable[Metric]:
        """The counts now."""
        return _feature_families(self._processor)


def _feature_families(processor: FeatureProcessor) -> list[Metric]:
    stats = processor.stats
    return [
        CounterMetricFamily(
            "streamrec_feature_rows_written",
            "Feature rows written (conditionally) to the online store.",
            value=stats.rows_written,
        ),
        CounterMetricFamily(
            "streamrec_feature_write_conflicts",
            "Conditional writes rejected because the row moved since it was read; each is "
            "re-read and recomputed.",
            value=stats.write_conflicts,
        ),
        histogram(
            "streamrec_feature_write_seconds",
            "Latency of one write_rows call (the rows of a batch, written concurrently).",
            stats.write_seconds,
        ),
        CounterMetricFamily(
            "streamrec_invalidation_failures",
            "Batches whose users' cached recommendations could not be invalidated.",
            value=processor.invalidation_failures,
        ),
    ]


class LanderCollector:
    """The Parquet lander's objects and the events that failed conversion to the Glue schema."""

    def __init__(self, lander: ParquetLander) -> None:
        self._lander = lander

    def describe(self) -> Iterable[Metric]:
        """The families, without samples."""
        return self.collect()

    def collect(self) -> Iterable[Metric]:
        """The counts now."""
        return [
            CounterMetricFamily(
                "streamrec_lake_objects_written",
                "Parquet objects written to the lake.",
                value=self._lander.objects_written,
            ),
            CounterMetricFamily(
                "streamrec_lake_conversion_failures",
                "Events that did not fit the Glue table's schema (in the lake errors prefix).",
                value=self._lander.rows_failed,
            ),
        ]


def histogram(name: str, documentation: str, latencies: Latencies) -> HistogramMetricFamily:
    """A Prometheus histogram family of ``latencies`` (one unlabelled series)."""
    family = HistogramMetricFamily(name, documentation)
    buckets = [(_le(bound), count) for bound, count in latencies.cumulative()]
    family.add_metric([], buckets, sum_value=latencies.total_seconds)
    return family


def _le(bound: float) -> str:
    return "+Inf" if bound == float("inf") else repr(float(bound))
