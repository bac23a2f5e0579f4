"""Smoke test of bench/features.py: a small run reports every key the issue names.

No figure is asserted against a target: the machine running the tests decides those.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "features.py"


def test_a_quick_run_reports_every_figure() -> None:
    spec = importlib.util.spec_from_file_location("bench_features", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = asyncio.run(bench.run(quick=True))
    json.dumps(out)  # printable as JSON
    for key in ("writes_per_event", "naive_writes_per_event", "usd_per_million_events"):
        assert math.isfinite(out[key]) and out[key] > 0
    assert out["naive_writes_per_event"] > 10 * out["writes_per_event"]
    assert out["processor_events_per_s"] > 0
    for key in ("read_p99_ms", "naive_read_p99_ms"):
        assert set(out[key]) == {"1", "50", "500"}
        assert all(math.isfinite(v) and v > 0 for v in out[key].values())
    assert set(bench.targets(out)) == {"writes_per_event<=0.25", "processor_events_per_s>=50000"}


def test_the_processor_alone_reports_its_figures() -> None:
    spec = importlib.util.spec_from_file_location("bench_features_processor", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = asyncio.run(bench.run_processor_only(quick=True))
    assert out["events"] == 1_500
    for key in ("processor_events_per_s", "processor_events_per_s_live_batches"):
        assert out[key] > 0
    assert set(bench.targets(out)) == {"processor_events_per_s>=50000"}
