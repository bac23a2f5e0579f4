"""Smoke test of bench/serving.py: a small run reports every figure the issue names.

No figure is asserted against a target: the machine running the tests decides those.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import math
from pathlib import Path

import redis

BENCH = Path(__file__).resolve().parents[2] / "bench" / "serving.py"
FIGURES = (
    "hit_p50_ms",
    "hit_p99_ms",
    "hit_rps",
    "miss_p50_ms",
    "miss_p99_ms",
    "miss_rps",
    "naive_p50_ms",
    "naive_p99_ms",
    "naive_rps",
)


def test_a_quick_run_reports_every_figure_and_cleans_up(redis_url: str) -> None:
    spec = importlib.util.spec_from_file_location("bench_serving", BENCH)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    out = asyncio.run(bench.run(quick=True, redis_url=redis_url))
    json.dumps(out)  # printable as JSON
    for key in FIGURES:
        assert isinstance(out[key], float) and math.isfinite(out[key]) and out[key] > 0, key
    for key in ("hit_requests", "miss_requests", "naive_requests"):
        assert out[key] > 0, key
    assert out["concurrency"] == 16
    assert out["miss"]["cached"] == 0  # every miss was computed
    assert out["hit"]["cached"] > 0  # and hits came from the cache
    assert out["hit"]["statuses"] == {"200": out["hit_requests"]}
    assert out["naive"]["statuses"] == {"200": out["naive_requests"]}
    assert "cores" in out["machine"]
    assert set(out["targets"]) == {"hit_p99_ms<5", "miss_p99_ms<50"}
    if bench.WRK is not None:  # hits also measured by wrk, against `streamrec serve --workers`
        workers = out["hit_wrk_workers"]
        assert workers["cached"] == workers["requests"] > 0
        assert workers["errors"] == workers["non_2xx"] == 0
        assert out["hit_p99_ms"] == workers["p99_ms"]
        assert out["hit_measured_by"].startswith("wrk")
    client = redis.Redis.from_url(redis_url)
    try:
        assert not list(client.scan_iter(match=f"{out['cache_prefix']}*"))  # deleted after
    finally:
        client.close()
