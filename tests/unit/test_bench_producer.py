"""Smoke test of bench/producer.py: each measurement runs at tiny sizes and reports its keys.

No timing is asserted: the machine running the tests decides those figures.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "producer.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_producer", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_sdk_overhead_reports_positive_figures(bench: ModuleType) -> None:
    out = bench.sdk_overhead(300, repeats=1)
    for key in ("sdk_us_per_event", "sdk_events_per_s", "sdk_us_per_event_with_futures"):
        assert out[key] > 0
    assert "rate_limit" in out["sdk_config"]


@pytest.mark.e2e
def test_embedded_comparison_counts_calls_for_each_contender(bench: ModuleType) -> None:
    out = bench.embedded_comparison(20, users=5)
    for name in ("streamrec", "streamrec_aggregated", "put_record_loop", "unbatched"):
        assert out[f"{name}_events_per_s"] > 0
        assert out[f"{name}_calls_per_event"] > 0
    assert out["put_record_loop_calls_per_event"] == out["unbatched_calls_per_event"] == 1.0
    assert out["streamrec_calls_per_event"] < 1.0


def test_a_stalled_stream_rejects_past_the_buffer_and_delivers_the_rest(
    bench: ModuleType,
) -> None:
    out = bench.stalled_memory(0.5, rate=20_000, buffer_bytes=2 * 1024 * 1024)
    assert out["buffer_mb"] == 2.0 and out["stalled_offered"] > 0
    assert out["stalled_rejected"] > 0  # 1 MiB holds a few thousand events: the rest bounce
    assert out["stalled_accepted"] == out["stalled_offered"] - out["stalled_rejected"]
    assert out["stalled_delivered_after_release"] == out["stalled_accepted"] > 0
    assert isinstance(out["stalled_rss_growth_mb"], float)


def test_targets_are_judged_from_the_figures(bench: ModuleType) -> None:
    figures = {
        "sdk_us_per_event": 9.0,
        "sdk_us_per_event_with_futures": 12.0,
        "buffer_mb": 8.0,
        "stalled_rss_growth_mb": 30.0,
        "stalled_accepted": 10,
        "stalled_delivered_after_release": 10,
    }
    assert bench.targets(figures) == {
        "sdk_us_per_event_le_10": True,
        "sdk_us_per_event_with_futures_le_10": False,
        "stalled_memory_within_buffer": False,
    }
