"""Smoke test of bench/e2e.py: one low rate on the embedded stack, every process real.

No figure is held against a target here: the machine running the tests decides those.
"""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench" / "e2e.py"
FIGURES = (
    "max_sustained_events_per_s",
    "feature_freshness_p50_s",
    "feature_freshness_p99_s",
    "rec_freshness_p50_s",
    "rec_freshness_p99_s",
    "final_lag_ms",
)


def test_a_smoke_run_reports_every_figure_finite() -> None:
    spec = importlib.util.spec_from_file_location("bench_e2e", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = bench  # its dataclasses look their module up
    spec.loader.exec_module(bench)
    out = bench.run(smoke=True, stacks="embedded", rates=None, seconds=3.0)
    json.dumps(out)  # printable as JSON
    embedded = out["embedded"]
    assert set(FIGURES) <= set(embedded)
    for key in FIGURES[1:]:
        assert math.isfinite(embedded[key]) and embedded[key] > 0, key
    (rate,) = embedded["rates"]
    assert rate["events"] > rate["probes"] > 0
    assert rate["failed"] == 0
    assert rate["probes_without_feature"] == 0
    assert rate["probes_without_rec_change"] == 0  # a probe's item is the top recommendation
    assert set(rate["cpu_s_per_1000_events"]) >= {"moto", "consumer", "worker"}
