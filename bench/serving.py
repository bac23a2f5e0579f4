"""Benchmark of the recommender worker (issue 6). Prints one JSON object on stdout, progress on
stderr.

    .venv/bin/python bench/serving.py [--quick] [--moto subprocess|in-process] [--redis-url URL]

Setup: MovieLens (all 100,004 ratings; ``--quick``: the first ``QUICK_EVENTS``), shifted so the
newest is now (as the demo does, so that time windows hold data), folded into feature rows by
``FeatureUpdater`` over the in-memory store (the same rows the processor writes to DynamoDB,
without moto's ~300 conditional writes/s) and copied into the features table of the embedded
moto with BatchWriteItem. The worker (``streamrec.wiring.recommender_app``: the MovieLens genre
catalog, no batch model) caches in a real Redis (db 15, a key prefix of this run, deleted at the
end) and is served over loopback by uvicorn (``models.worker.running``). Load comes from
bench/http_load.py in a process of its own, ``CONCURRENCY`` requests in flight.

Measurements, in this order:

1. the client's own floor: the same client against a fixed-answer asyncio server (no framework);
2. ``GET /healthz`` of the worker: uvicorn and FastAPI without any I/O;
3. cache misses, against ``streamrec serve`` in processes of their own (this one holds the whole
   data set, whose garbage collection would pause a worker here): every user once per round, in
   a shuffled order, after ``RedisCache.invalidate`` of every user (what the feature processors
   do when a user's features change), so every answer is computed. The first round is reported
   apart (``miss_first_round``): the worker has not read any item row yet
   (``models.item_rows``); the headline is the rounds after it, one worker process, as
   ``streamrec serve`` runs by default (``miss_workers``: ``SERVE_WORKERS`` processes, each
   reading its own item rows). These workers wait for their features as long as
   they take (``MISS_DEADLINE``), so that every miss is computed and timed; then misses at
   concurrency 1, and one round against a worker with the shipped deadline
   (``recommend_deadline_seconds``, 0.25 s), whose late answers are popular items flagged
   degraded (``miss_shipped_deadline.degraded``). ``miss_feature_reads``: the one-process
   worker's store reads and rows per read (``models.batching``);
4. cache hits: after a pass at concurrency 1 that caches the answers a miss round served
   degraded (past the worker's deadline, not cached), users drawn at random, at
   ``CONCURRENCY`` and at 1; the hit latencies are of the answers that said ``cached: true``
   (``hit.cached`` of ``hit.requests``);
5. the naive handler, served beside the worker: one GetItem per feature of the user, of each of
   its ``SOURCE_ITEMS`` newest items and of the global row, one after another, nothing cached,
   the same ``models.recommender.rank``;
6. where a miss's time goes: the worker's reads and ``rank`` timed one request at a time.

moto runs in a process of its own by default (``python -m infra.local``): in the worker's
process its request threads hold the GIL the worker's event loop needs (``--moto in-process``
measures that).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack, contextmanager
from pathlib import Path
from typing import Any

import httpx
import redis
import uvloop
from fastapi import FastAPI

from feature_store.definitions import FEATURES
from feature_store.features import POPULAR_KEY, ItemFeatures, UserFeatures, item_key, user_key
from feature_store.memory import InMemoryOnlineStore
from feature_store.online import ALWAYS_READ, OnlineStore
from feature_store.rows import Row, decode, encode
from feature_store.transforms import Sequenced
from feature_store.updates import FeatureUpdater
from infra.apply import apply
from infra.clients import async_client, client
from infra.local import embedded_stack, free_port, moto_process, stop_process, wait_http
from infra.local_redis import delete_prefix
from infra.settings import Settings
from models.cache import RedisCache
from models.catalog import ItemCatalog
from models.numbered import with_numbered_covis
from models.recommender import SOURCE_ITEMS, rank
from models.worker import running
from producers.movielens import load_movielens
from producers.replay import shift_to_now
from streamrec.wiring import recommender_app

ROOT = Path(__file__).resolve().parents[1]
LOAD_CLIENT = Path(__file__).resolve().with_name("http_load.py")
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
CONCURRENCY = 16
K = 10
SEED = 6
SHARD = "replay"
FOLD_BATCH = 20_000
QUICK_EVENTS = 1_000
FULL = {"floor": 10_000, "miss_rounds": 4, "hit": 20_000, "hit_c1": 2_000, "naive": 160}
# users compared with the naive answer, users timed part by part, misses at concurrency 1
FULL |= {"same": 20, "breakdown": 100, "miss_c1": 200}
QUICK = {"floor": 200, "miss_rounds": 2, "hit": 300, "hit_c1": 50, "naive": 4}
QUICK |= {"same": 1, "breakdown": 5, "miss_c1": 10}
STARTUP_TIMEOUT_SECONDS = 20.0
WRK = shutil.which("wrk")  # Debian package wrk: a C load generator (apt-get install wrk)
WRK_SECONDS = {"full": 10, "quick": 1}
SERVE_WORKERS = 2  # one per core of this machine
# wrk's script: the paths of a file in turn, answers saying "cached":true counted, one JSON line
WRK_SCRIPT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args)
  paths = {}
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  i = 0; cached = 0
end
function request()
  i = i % #paths + 1
  return wrk.format("GET", paths[i])
end
function response(status, headers, body)
  if string.find(body, '"cached":true', 1, true) then cached = cached + 1 end
end
function done(summary, latency, requests)
  local c = 0
  for _, t in ipairs(threads) do c = c + t:get("cached") end
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"p50_ms":%.3f,"p99_ms":%.3f,"cached":%d,"errors":%d,"non_2xx":%d,"wall_s":%.3f}\\n',
    summary.requests, latency:percentile(50) / 1000, latency:percentile(99) / 1000, c,
    e.connect + e.read + e.write + e.timeout, e.status, summary.duration / 1e6))
end
"""
MISS_DEADLINE = 60.0  # seconds the measured worker waits for features (shipped: 0.25)
FIXED_ANSWER = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 15\r\n\r\n"
    b'{"status":"ok"}'
)


def log(message: str) -> None:
    """Progress, on stderr."""
    print(f"bench: {message}", file=sys.stderr, flush=True)


# --- the data ---------------------------------------------------------------------------------


async def feature_rows(events: Sequence[Sequenced]) -> dict[str, Row]:
    """The rows the feature processor makes of ``events`` (one shard, in this order)."""
    store = InMemoryOnlineStore()
    updater = FeatureUpdater(store)
    for start in range(0, len(events), FOLD_BATCH):
        await updater.apply(SHARD, events[start : start + FOLD_BATCH])
    return store.rows()


def copy_rows(settings: Settings, rows: Sequence[Row]) -> None:
    """Write ``rows`` (as stored: versions and marks) to the features table, 25 a call."""
    dynamodb = client("dynamodb", settings)
    table = settings.features_table
    for start in range(0, len(rows), 25):
        request = {table: [{"PutRequest": {"Item": encode(r)}} for r in rows[start : start + 25]]}
        while request:
            request = dynamodb.batch_write_item(RequestItems=request).get("UnprocessedItems")


# --- the naive handler ------------------------------------------------------------------------

_BY_ENTITY = {e: [f for f in FEATURES if f.entity == e] for e in ("user", "item", "global")}


def naive_app(dynamodb: Any, table: str, catalog: ItemCatalog) -> FastAPI:
    """A handler reading every feature of every row it needs with a GetItem of its own, one
    after another, caching nothing, and ranking with ``models.recommender.rank``."""
    app = FastAPI(title="naive recommender")

    async def row(key: str, entity: str) -> Row | None:
        merged: dict[str, Any] = {}
        for feature in _BY_ENTITY[entity]:
            names = {f"#a{i}": a for i, a in enumerate((*ALWAYS_READ, *feature.attributes))}
            response = await dynamodb.get_item(
                TableName=table,
                Key={"pk": {"S": key}},
                ProjectionExpression=", ".join(names),
                ExpressionAttributeNames=names,
            )
            if "Item" not in response:
                return None
            merged.update(response["Item"])
        return decode(merged)

    @app.get("/recommendations/{user_id}")
    async def recommendations(user_id: str, k: int = K) -> dict[str, Any]:
        user_row = await row(user_key(user_id), "user")
        user = user_row.features if user_row else None
        assert user is None or isinstance(user, UserFeatures)
        recent = [r.item_id for r in user.recent[:SOURCE_ITEMS]] if user else []
        items: list[ItemFeatures | None] = []
        for item_id in recent:
            item_row = await row(item_key(item_id), "item")
            items.append(item_row.features if item_row else None)  # type: ignore[arg-type]
        popular_row = await row(POPULAR_KEY, "global")
        assert popular_row is not None, "the global row is missing"
        now = int(time.time() * 1000)
        recs = rank(user, items, popular_row.features, k, catalog=catalog, now_ms=now)  # type: ignore[arg-type]
        return {
            "user_id": user_id,
            "k": k,
            "recommendations": [r.as_dict() for r in recs],
            "cached": False,
        }

    return app


# --- servers and load -------------------------------------------------------------------------


class _FixedAnswer(asyncio.Protocol):
    """An HTTP/1.1 server that answers every request with the same bytes (the client's floor)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport: Any = transport
        self._pending = b""

    def data_received(self, data: bytes) -> None:
        self._pending += data
        requests = self._pending.count(b"\r\n\r\n")
        self._pending = self._pending.rsplit(b"\r\n\r\n", 1)[-1]
        self._transport.write(FIXED_ANSWER * requests)


@contextmanager
def stack(moto: str) -> Iterator[str]:
    """The embedded moto, in this process or in its own."""
    if moto == "in-process":
        with embedded_stack() as url:
            yield url
    else:
        with moto_process() as moto_:
            yield moto_.url


async def load(
    base_url: str,
    paths: Sequence[str],
    concurrency: int = CONCURRENCY,
    client_name: str = "aiohttp",
    warmup_path: str = "/healthz",
) -> dict[str, Any]:
    """``paths`` requested by bench/http_load.py at ``concurrency``: its raw result."""
    spec = {
        "base_url": base_url,
        "paths": list(paths),
        "concurrency": concurrency,
        "client": client_name,
        "warmup_path": warmup_path,
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(LOAD_CLIENT),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate(json.dumps(spec).encode())
    if process.returncode != 0:
        raise RuntimeError(f"the load client exited with {process.returncode}")
    return json.loads(out)


async def wrk(base_url: str, paths: Sequence[str], seconds: int) -> dict[str, Any]:
    """``paths`` requested in turn by wrk (one thread, ``CONCURRENCY`` connections) for
    ``seconds``: p50/p99 (ms), requests/s, and how many answers said ``cached: true``."""
    assert WRK is not None
    with tempfile.TemporaryDirectory() as tmp:
        script, listing = Path(tmp, "paths.lua"), Path(tmp, "paths.txt")
        script.write_text(WRK_SCRIPT)
        listing.write_text("\n".join(paths) + "\n")
        command = [WRK, "-t1", f"-c{CONCURRENCY}", f"-d{seconds}s", "-s", str(script)]
        process = await asyncio.create_subprocess_exec(
            *command, base_url, "--", str(listing), stdout=asyncio.subprocess.PIPE
        )
        out, _ = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"wrk exited with {process.returncode}")
    result = json.loads(out.decode().strip().splitlines()[-1])
    return {
        "p50_ms": result["p50_ms"],
        "p99_ms": result["p99_ms"],
        "rps": round(result["requests"] / result["wall_s"], 1),
        "requests": result["requests"],
        "cached": result["cached"],
        "errors": result["errors"],
        "non_2xx": result["non_2xx"],
    }


def serve_environment(settings: Settings) -> dict[str, str]:
    """The environment of a ``streamrec serve`` over this run's resources and cache."""
    names = ("endpoint_url", "stream_name", "features_table", "checkpoints_table", "bucket")
    names += ("glue_database", "redis_url", "cache_prefix", "cache_ttl_seconds")
    names += ("recommend_deadline_seconds", "item_rows_max_age_seconds", "reads_in_flight")
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT", "STREAMREC_"))}
    ours = {f"STREAMREC_{n.upper()}": str(getattr(settings, n)) for n in names}
    ours["STREAMREC_LOG_LEVEL"] = "WARNING"  # no access line per request
    ours["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    return {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"} | kept | ours


@contextmanager
def served(settings: Settings, workers: int) -> Iterator[str]:
    """``streamrec serve --workers N`` over ``settings``; yields its base URL once it answers."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "streamrec.cli", "--port", str(port), "serve"]
    process = subprocess.Popen(
        [*command, "--workers", str(workers)], env=serve_environment(settings), cwd=ROOT
    )
    try:
        wait_http(url + "/healthz", process, "streamrec serve", STARTUP_TIMEOUT_SECONDS * 3)
        yield url
    finally:
        stop_process(process, timeout=30)  # SIGTERM: the command stops its workers


async def feature_reads(base_url: str) -> dict[str, float]:
    """The worker's feature reads so far (its ``/metrics``): reads and rows per read, by kind."""
    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{base_url}/metrics")).text
    values = {}
    for line in text.splitlines():
        if line.startswith(("streamrec_feature_reads_total", "streamrec_feature_keys_read_total")):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    out: dict[str, float] = {}
    for kind in ("user", "item"):
        reads = values.get(f'streamrec_feature_reads_total{{kind="{kind}"}}', 0.0)
        keys = values.get(f'streamrec_feature_keys_read_total{{kind="{kind}"}}', 0.0)
        out[f"{kind}_reads"] = reads
        out[f"{kind}_rows_per_read"] = round(keys / reads, 2) if reads else 0.0
        out[f"{kind}_rows_read"] = keys
    return out


def summary(results: Sequence[dict[str, Any]], cached_only: bool = False) -> dict[str, Any]:
    """p50/p99 (ms), requests/s and counts of one or more load runs taken together;
    ``cached_only``: the latencies of the answers served from the cache alone."""
    answers = [
        (ms, hit)
        for r in results
        for ms, hit in zip(r["latencies_ms"], r["cached"], strict=True)
        if hit or not cached_only
    ]
    latencies = sorted(ms for ms, _ in answers)
    n = len(latencies)
    statuses: dict[str, int] = {}
    for r in results:
        for status, count in r["statuses"].items():
            statuses[status] = statuses.get(status, 0) + count
    total = sum(len(r["latencies_ms"]) for r in results)
    return {
        "p50_ms": round(statistics.median(latencies), 3) if n else None,
        "p99_ms": round(latencies[min(n - 1, math.ceil(0.99 * n) - 1)], 3) if n else None,
        "rps": round(total / sum(r["wall_s"] for r in results), 1),
        "requests": total,
        "statuses": statuses,
        "cached": sum(sum(r["cached"]) for r in results),
        "degraded": sum(sum(r["degraded"]) for r in results),
    }


def paths_of(users: Sequence[str]) -> list[str]:
    """The recommendation request of each user."""
    return [f"/recommendations/{u}?k={K}" for u in users]


# --- the run ----------------------------------------------------------------------------------


async def miss_breakdown(online: OnlineStore, users: Sequence[str]) -> dict[str, float]:
    """Median ms of a miss's parts, one request at a time: the user row, its items, ``rank``."""
    parts: dict[str, list[float]] = {
        "user_read": [],
        "items_read": [],
        "popular_read": [],
        "rank": [],
    }
    for user_id in users:
        t0 = time.perf_counter()
        user = await online.user(user_id)
        t1 = time.perf_counter()
        recent = [r.item_id for r in user.recent[:SOURCE_ITEMS]] if user else []
        # numbered as the worker reads them (models.numbered), which it then keeps
        items = [None if f is None else with_numbered_covis(f) for f in await online.items(recent)]
        t2 = time.perf_counter()
        popular = await online.popular()
        t3 = time.perf_counter()
        rank(user, items, popular, K, now_ms=int(time.time() * 1000))
        t4 = time.perf_counter()
        for name, took in zip(parts, (t1 - t0, t2 - t1, t3 - t2, t4 - t3), strict=True):
            parts[name].append(took * 1000)
    return {f"{name}_p50_ms": round(statistics.median(v), 3) for name, v in parts.items()}


async def run(
    quick: bool = False, redis_url: str = DEFAULT_REDIS_URL, moto: str = "subprocess"
) -> dict[str, Any]:
    """Every measurement (see the module docstring); ``quick``: a small smoke run."""
    sizes = QUICK if quick else FULL
    loadavg_start = os.getloadavg()
    events, _ = shift_to_now(
        load_movielens(QUICK_EVENTS if quick else None), int(time.time() * 1000)
    )
    ordered = [Sequenced(e, SHARD, str(n + 1)) for n, e in enumerate(events)]
    started = time.perf_counter()
    rows = await feature_rows(ordered)
    took = time.perf_counter() - started
    log(f"{len(events)} events folded into {len(rows)} rows in {took:.1f} s")
    users = sorted({e.user_id for e in events}, key=int)
    catalog = ItemCatalog.from_events(events)
    rng = random.Random(SEED)
    prefix = f"bench-{uuid.uuid4().hex[:12]}:recs"
    if not redis.Redis.from_url(redis_url).ping():
        raise RuntimeError(f"no Redis answers at {redis_url}")
    with stack(moto) as url:
        settings = Settings(
            endpoint_url=url,
            redis_url=redis_url,
            cache_ttl_seconds=3600,  # the hits phase must not outlive its entries
        ).with_unique_names("bench")
        settings = settings.model_copy(update={"cache_prefix": prefix})
        apply(settings)
        started = time.perf_counter()
        copy_rows(settings, list(rows.values()))
        log(f"{len(rows)} rows copied to DynamoDB in {time.perf_counter() - started:.1f} s")
        try:
            out = await _measure(settings, users, catalog, sizes, rng)
        finally:
            deleted = delete_prefix(redis_url, prefix)
            log(f"deleted {deleted} Redis keys under {prefix}")
    return {
        **out,
        "concurrency": CONCURRENCY,
        "k": K,
        "events": len(events),
        "users": len(users),
        "feature_rows": len(rows),
        "moto": moto,
        "cache_prefix": prefix,
        "client": "aiohttp, in a process of its own (bench/http_load.py)",
        "machine": machine_note(loadavg_start),
    }


async def _measure(
    settings: Settings,
    users: list[str],
    catalog: ItemCatalog,
    sizes: dict[str, int],
    rng: random.Random,
) -> dict[str, Any]:
    async with AsyncExitStack() as stack_:
        dynamodb = await stack_.enter_async_context(async_client("dynamodb", settings))
        online = OnlineStore(dynamodb, settings.features_table)
        # misses are measured against streamrec serve, in a process of its own (this one holds
        # the whole data set: its collector's full passes would pause the worker), which waits
        # for its features as long as they take: every miss is computed
        computing = settings.model_copy(update={"recommend_deadline_seconds": MISS_DEADLINE})
        computer = stack_.enter_context(served(computing, 1))
        # and one as shipped (0.25 s), whose late misses are served degraded
        as_shipped = stack_.enter_context(served(settings, 1))
        # hits (after the refill), healthz and the naive comparison: a worker in this process
        app = await stack_.enter_async_context(recommender_app(computing, online, catalog))
        worker = await stack_.enter_async_context(running(app))
        naive = await stack_.enter_async_context(
            running(naive_app(dynamodb, settings.features_table, catalog))
        )
        loop = asyncio.get_running_loop()
        floor_server = await loop.create_server(_FixedAnswer, "127.0.0.1", 0)
        stack_.callback(floor_server.close)
        floor_url = f"http://127.0.0.1:{floor_server.sockets[0].getsockname()[1]}"
        invalidator = RedisCache(settings.redis_url or "", prefix=settings.cache_prefix)
        stack_.push_async_callback(invalidator.close)

        out: dict[str, Any] = {}
        for name in ("aiohttp", "httpx"):
            floor = summary(
                [await load(floor_url, ["/"] * sizes["floor"], client_name=name, warmup_path="/")]
            )
            out[f"client_floor_{name}"] = floor
            log(f"client floor ({name}): {floor}")
        healthz = summary([await load(worker, ["/healthz"] * sizes["floor"])])
        log(f"healthz: {healthz}")

        async def miss_rounds(url: str, what: str) -> tuple[dict[str, Any], dict[str, Any]]:
            """Every user once a round, all invalidated first: (the rounds after the first,
            with the worker's item rows read; the first)."""
            rounds = []
            for round_ in range(sizes["miss_rounds"]):
                await invalidator.invalidate(users)
                rounds.append(await load(url, paths_of(rng.sample(users, len(users)))))
                log(f"miss round {round_ + 1} ({what}): {summary(rounds[-1:])}")
            return summary(rounds[1:] or rounds), summary(rounds[:1])

        miss_one, miss_first = await miss_rounds(computer, "one process")
        reads = await feature_reads(computer)
        log(f"misses after the first round, one process: {miss_one}; feature reads: {reads}")
        with served(computing, SERVE_WORKERS) as computers:
            miss_workers, _ = await miss_rounds(computers, f"{SERVE_WORKERS} processes")
        log(f"misses after the first round, {SERVE_WORKERS} processes: {miss_workers}")
        miss = miss_one  # the headline: each process reads its own item rows, so one warms first
        await invalidator.invalidate(users)
        miss_c1 = summary([await load(computer, paths_of(users[: sizes["miss_c1"]]), 1)])
        log(f"misses at concurrency 1: {miss_c1}")
        await invalidator.invalidate(users)
        shipped_miss = summary([await load(as_shipped, paths_of(rng.sample(users, len(users))))])
        log(f"misses, deadline {settings.recommend_deadline_seconds} s: {shipped_miss}")
        # a miss past that deadline was served degraded, not cached: compute those again
        refill = await load(worker, paths_of(users))
        log(f"refill: {summary([refill])}")
        hits = [await load(worker, paths_of(rng.choices(users, k=sizes["hit"])))]
        hit = summary(hits, cached_only=True)
        log(f"hits: {hit}")
        hits_c1 = [await load(worker, paths_of(rng.choices(users, k=sizes["hit_c1"])), 1)]
        hit_c1 = summary(hits_c1, cached_only=True)
        log(f"hits at concurrency 1: {hit_c1}")
        by_wrk = {}
        if WRK is not None:  # a C client: its own cost stays far below the server's
            seconds = WRK_SECONDS["quick" if sizes is QUICK else "full"]
            hit_paths = paths_of(rng.choices(users, k=sizes["hit"]))
            by_wrk["client_floor_wrk"] = await wrk(floor_url, ["/"], seconds)
            by_wrk["healthz_wrk"] = await wrk(worker, ["/healthz"], seconds)
            by_wrk["hit_wrk"] = await wrk(worker, hit_paths, seconds)
            with served(settings, SERVE_WORKERS) as workers:
                await wrk(workers, hit_paths, seconds)  # each process reads its near copies
                by_wrk["hit_wrk_workers"] = {
                    "workers": SERVE_WORKERS,
                    **await wrk(workers, hit_paths, seconds),
                }
            log(f"hits by wrk: {by_wrk}")
        naive_paths = paths_of((users * (1 + sizes["naive"] // len(users)))[: sizes["naive"]])
        rng.shuffle(naive_paths)
        naive_ = summary([await load(naive, naive_paths)])
        log(f"naive: {naive_}")
        same = await _same_answers(worker, naive, users[: sizes["same"]])
        breakdown = await miss_breakdown(online, users[: sizes["breakdown"]])
        log(f"miss breakdown: {breakdown}")

    # the headline hit figures: the shipped way to serve on this machine (a process a core),
    # measured by wrk when it is installed; else the in-process worker by the Python client
    headline = by_wrk.get("hit_wrk_workers", hit)
    measured_by = (
        f"wrk (1 thread, {CONCURRENCY} connections), streamrec serve --workers {SERVE_WORKERS}"
        if by_wrk
        else "bench/http_load.py (aiohttp), the worker in this process"
    )
    return {
        "hit_p50_ms": headline["p50_ms"],
        "hit_p99_ms": headline["p99_ms"],
        "hit_rps": headline["rps"],
        "hit_measured_by": measured_by,
        "miss_p50_ms": miss["p50_ms"],
        "miss_p99_ms": miss["p99_ms"],
        "miss_rps": miss["rps"],
        "naive_p50_ms": naive_["p50_ms"],
        "naive_p99_ms": naive_["p99_ms"],
        "naive_rps": naive_["rps"],
        "hit_requests": hit["requests"],
        "miss_requests": miss["requests"],
        "naive_requests": naive_["requests"],
        "hit": hit,
        "miss": miss,
        "naive": naive_,
        "hit_concurrency_1": hit_c1,
        "miss_measured_by": "bench/http_load.py (aiohttp), streamrec serve (one process), the "
        "rounds after the first",
        "miss_workers": {"workers": SERVE_WORKERS, **miss_workers},
        "miss_first_round": miss_first,
        "miss_feature_reads": reads,
        "miss_concurrency_1": miss_c1,
        "miss_shipped_deadline": {
            "deadline_s": settings.recommend_deadline_seconds,
            **shipped_miss,
        },
        "healthz": healthz,
        **out,
        **by_wrk,
        "miss_breakdown": breakdown,
        "naive_same_items_as_worker": same,
        "targets": {
            "hit_p99_ms<5": headline["p99_ms"] < 5,
            "miss_p99_ms<50": miss["p99_ms"] < 50,
        },
    }


async def _same_answers(worker: str, naive: str, users: Sequence[str]) -> float:
    """The share of ``users`` whose naive answer lists the same items as the worker's."""
    same = 0
    async with httpx.AsyncClient() as http:
        for path in paths_of(users):
            a = (await http.get(worker + path)).json()["recommendations"]
            b = (await http.get(naive + path)).json()["recommendations"]
            same += [r["item_id"] for r in a] == [r["item_id"] for r in b]
    return round(same / len(users), 3)


def machine_note(loadavg_start: tuple[float, float, float]) -> str:
    """Cores, Python and the load average at the start and the end of the run."""
    end = os.getloadavg()
    return (
        f"{os.cpu_count()} cores (shared VM), Python {platform.python_version()}, "
        f"load average at start {loadavg_start[0]:.2f} (1 min), at end {end[0]:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few thousand events (smoke)")
    parser.add_argument("--moto", choices=("subprocess", "in-process"), default="subprocess")
    parser.add_argument("--redis-url", default=DEFAULT_REDIS_URL, help="a Redis, db 15 by default")
    args = parser.parse_args()
    # stopped (SIGTERM), unwind as on Ctrl-C: the servers started are stopped, Redis keys deleted
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # the worker's loop, as `streamrec serve` runs it (uvloop)
    out = uvloop.run(run(quick=args.quick, redis_url=args.redis_url, moto=args.moto))
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
