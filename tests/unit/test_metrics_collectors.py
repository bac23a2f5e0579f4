"""The Prometheus collectors read the components' plain stats at scrape time, in a registry of
their own: names, labels, values, histogram buckets; and the write-latency buckets they read."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from consumers.features import FeatureProcessor
from consumers.metrics import FeatureCollector, ProcessorCollector, RunnerCollector
from consumers.processor import Batch
from consumers.stats import RunnerStats, ShardProgress
from feature_store.latency import Latencies
from feature_store.memory import InMemoryOnlineStore
from feature_store.transforms import Sequenced
from infra.metrics import MetricsServer, ProducerCollector
from models.worker_metrics import WorkerMetrics
from producers.events import Event
from producers.metrics import ProducerMetrics


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample exposed, by name and sorted labels, parsed back from the text format."""
    text = generate_latest(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_the_runner_collector_reports_each_shard_and_skips_unknown_gauges() -> None:
    stats = RunnerStats()
    stats.shards["s-0"] = ShardProgress(
        records=12,
        events=30,
        poison=2,
        errors=1,
        throttles=4,
        held=True,
        millis_behind_latest=1_500,
        iterator_age_ms=250,
        checkpointed_at=1_000.0,
    )
    stats.shards["s-1"] = ShardProgress()  # never read
    registry = CollectorRegistry()
    registry.register(RunnerCollector(stats, clock=lambda: 1_007.5))
    got = samples(registry)
    s0, s1 = (("shard", "s-0"),), (("shard", "s-1"),)
    assert got[("streamrec_consumer_records_total", s0)] == 12
    assert got[("streamrec_consumer_events_total", s0)] == 30
    assert got[("streamrec_dead_letters_total", s0)] == 2
    assert got[("streamrec_consumer_batch_failures_total", s0)] == 1
    assert got[("streamrec_consumer_get_records_throttled_total", s0)] == 4
    assert got[("streamrec_shard_lease_held", s0)] == 1
    assert got[("streamrec_shard_behind_latest_seconds", s0)] == 1.5
    assert got[("streamrec_shard_iterator_age_seconds", s0)] == 0.25
    assert got[("streamrec_shard_checkpoint_age_seconds", s0)] == 7.5
    assert got[("streamrec_consumer_records_total", s1)] == 0
    assert got[("streamrec_shard_lease_held", s1)] == 0
    for gauge in ("behind_latest", "iterator_age", "checkpoint_age"):
        assert (f"streamrec_shard_{gauge}_seconds", s1) not in got  # no value yet: no sample


def sequenced(n: int, user: str = "u", item: str = "i") -> list[Sequenced]:
    return [
        Sequenced(
            Event(
                event_id=f"e{k}",
                user_id=user,
                item_id=f"{item}{k % 3}",
                event_type="view",
                timestamp=1_714_550_400_000 + k,
            ),
            "s-0",
            str(k + 1),
        )
        for k in range(n)
    ]


async def test_the_feature_collector_reads_rows_conflicts_latency_and_in_out() -> None:
    processor = FeatureProcessor(InMemoryOnlineStore())
    registry = CollectorRegistry()
    registry.register(FeatureCollector(processor))
    registry.register(ProcessorCollector({"features": processor}))
    await processor.process_records(Batch("s-0", sequenced(10)))
    got = samples(registry)
    stats = processor.stats
    assert got[("streamrec_feature_rows_written_total", ())] == stats.rows_written > 0
    assert got[("streamrec_feature_write_conflicts_total", ())] == 0
    assert got[("streamrec_invalidation_failures_total", ())] == 0
    calls = stats.write_seconds.count
    assert calls > 0 and got[("streamrec_feature_write_seconds_count", ())] == calls
    assert got[("streamrec_feature_write_seconds_bucket", (("le", "+Inf"),))] == calls
    assert math.isclose(
        got[("streamrec_feature_write_seconds_sum", ())], stats.write_seconds.total_seconds
    )
    features = (("processor", "features"),)
    assert got[("streamrec_processor_events_in_total", features)] == 10
    assert got[("streamrec_processor_events_out_total", features)] == 10


def test_latencies_count_each_duration_in_its_le_bucket() -> None:
    latencies = Latencies(bounds=(0.01, 0.1))
    for seconds in (0.004, 0.01, 0.05, 3.0):
        latencies.observe(seconds)
    assert latencies.cumulative() == [(0.01, 2), (0.1, 3), (math.inf, 4)]  # le: at or under
    assert latencies.count == 4 and math.isclose(latencies.total_seconds, 3.064)
    with pytest.raises(ValueError, match="increase"):
        Latencies(bounds=(0.1, 0.01))


class StubProducer:
    def __init__(self, metrics: ProducerMetrics) -> None:
        self.metrics = metrics


def test_the_producer_collector_labels_each_producer() -> None:
    collector = ProducerCollector()
    collector.add(
        "ingest",
        StubProducer(
            ProducerMetrics(
                sent=40,
                retried=3,
                failed=Counter({"InternalFailure": 1, "KMSThrottlingException": 2}),
                throttled=5,
                call_errors=Counter({"ReadTimeout": 1}),
                calls=4,
                call_latency_mean=0.5,
                buffered_events=7,
            )
        ),
    )
    collector.add("demo", StubProducer(ProducerMetrics(sent=9)))
    with pytest.raises(ValueError, match="ingest"):
        collector.add("ingest", StubProducer(ProducerMetrics()))
    registry = CollectorRegistry()
    registry.register(collector)
    got = samples(registry)
    ingest, demo = (("producer", "ingest"),), (("producer", "demo"),)
    assert got[("streamrec_producer_events_sent_total", ingest)] == 40
    assert got[("streamrec_producer_events_sent_total", demo)] == 9
    assert got[("streamrec_producer_events_failed_total", ingest)] == 3
    assert got[("streamrec_producer_events_retried_total", ingest)] == 3
    assert got[("streamrec_producer_entries_throttled_total", ingest)] == 5
    assert got[("streamrec_producer_call_errors_total", ingest)] == 1
    assert got[("streamrec_producer_call_seconds_count", ingest)] == 4
    assert got[("streamrec_producer_call_seconds_sum", ingest)] == 2.0
    assert got[("streamrec_producer_buffered_events", ingest)] == 7


def test_a_registry_refuses_a_second_collector_of_the_same_names() -> None:
    registry = CollectorRegistry()
    registry.register(RunnerCollector(RunnerStats()))
    with pytest.raises(ValueError, match="Duplicated"):
        registry.register(RunnerCollector(RunnerStats()))


def test_registries_never_share_counts() -> None:
    first, second = WorkerMetrics(), WorkerMetrics()
    first.cache.labels("hit").inc()
    assert first.registry.get_sample_value("streamrec_cache_lookups_total", {"result": "hit"}) == 1
    assert (
        second.registry.get_sample_value("streamrec_cache_lookups_total", {"result": "hit"}) is None
    )


def test_the_cache_hit_ratio_is_nan_before_any_lookup_then_hits_over_lookups() -> None:
    metrics = WorkerMetrics()
    assert math.isnan(metrics.registry.get_sample_value("streamrec_cache_hit_ratio"))
    for result in ("hit", "hit", "miss", "error"):
        metrics.cache.labels(result).inc()
    assert metrics.registry.get_sample_value("streamrec_cache_hit_ratio") == 0.5


def test_the_metrics_server_serves_the_registry_on_loopback_and_frees_its_port() -> None:
    import httpx

    registry = CollectorRegistry()
    collector = ProducerCollector()
    collector.add("demo", StubProducer(ProducerMetrics(sent=2)))
    registry.register(collector)
    with MetricsServer(registry, "127.0.0.1", 0) as server:
        assert server.url.startswith("http://127.0.0.1:")
        body: Any = httpx.get(server.url, timeout=5).text
    assert 'streamrec_producer_events_sent_total{producer="demo"} 2.0' in body
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url, timeout=5)


def test_the_consumer_endpoint_is_off_without_a_port_and_names_a_port_in_use() -> None:
    import socket

    from infra.settings import Settings
    from streamrec.observability import ProcessMetrics, serving

    metrics = ProcessMetrics()
    for port in (None, 0):
        with serving(Settings(metrics_port=port), metrics) as url:
            assert url is None
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with (
            pytest.raises(SystemExit, match=f"127.0.0.1:{port} is in use.*STREAMREC_METRICS_PORT"),
            serving(Settings(metrics_port=port), metrics),
        ):
            pass
