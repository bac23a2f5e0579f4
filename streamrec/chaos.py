"""``streamrec chaos``: kill the consumer with SIGKILL at random points; the features must not care.

moto runs as its own process (``python -m infra.local``) so the stack outlives every consumer.
The same seeded synthetic events (on ``CHAOS_ITEMS`` items) go to two copies of the infra. The
clean copy is consumed by one ``streamrec consume --until-caught-up`` that runs to the end; the
chaos copy by one that is killed ``kills`` times, each time a seeded random delay after its first
new checkpoint, and restarted; the last one runs to the end. Then every feature row of the two
tables is compared (``streamrec.rowdiff``). Kill delays are bounded by the clean run's work time
divided by ``kills + 1``, so every kill lands while there is still work in hand.
"""

from __future__ import annotations

import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from feature_store.features import COVIS_TOP_K
from infra.apply import apply
from infra.clients import client
from infra.local import free_port
from infra.settings import Settings
from producers.producer import EventProducer
from producers.synthetic import synthetic_events
from streamrec.rowdiff import compare, features_by_key, scan_items

CHAOS_GET_RECORDS_LIMIT = 10  # small reads: many batches, so kills land between and inside them
AGGREGATE_MAX_BYTES = 4_096  # ~20 events per aggregated record: sub-sequence marks are exercised
POLL_SECONDS = 0.05
STACK_DEADLINE = 30.0
RUN_DEADLINE = 600.0  # one consumer process, start to finish
EXAMPLES = 3
# A row keeps its COVIS_TOP_K most co-visited items, cutting after each batch: past that bound the
# result depends on batching and shard interleaving, crash or no crash (docs/decisions/0006).
CHAOS_ITEMS = COVIS_TOP_K
CHAOS_WORKER_ID = "chaos-consumer"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass
class _Run:
    """One consumer process's life: how long it took to start working and to finish."""

    first_checkpoint: float
    seconds: float
    returncode: int | None


def run_chaos(settings: Settings, *, events: int, kills: int, seed: int) -> dict[str, Any]:
    """Run both copies and compare them; returns the JSON-ready report."""
    started = time.monotonic()
    if "get_records_limit" not in settings.model_fields_set:
        settings = settings.model_copy(update={"get_records_limit": CHAOS_GET_RECORDS_LIMIT})
    if "lake_buffer_bytes" not in settings.model_fields_set:
        # kills are timed from the first checkpoint, which a buffering lander would hold back
        # until its first flush: the lake is written (and checkpointed) with every batch here
        settings = settings.model_copy(update={"lake_buffer_bytes": 0})
    with moto_process() as url:
        clean, chaos = (named(settings.with_endpoint(url), suffix) for suffix in ("clean", "chaos"))
        batch = synthetic_events(events, items=CHAOS_ITEMS, seed=seed)
        for copy in (clean, chaos):
            apply(copy)
            produce(copy, batch)
        baseline = consume(clean)
        if baseline.returncode != 0:
            raise RuntimeError(f"the clean consumer failed with exit code {baseline.returncode}")
        work = max(baseline.seconds - baseline.first_checkpoint, POLL_SECONDS)
        rng = random.Random(seed)
        done = 0
        for _ in range(kills):
            delay = rng.uniform(0, work / (kills + 1))
            if consume(chaos, kill_after=delay).returncode is not None:
                break  # it finished before the kill: nothing left to interrupt
            done += 1
        final = consume(chaos)
        if final.returncode != 0:
            raise RuntimeError(f"the chaos consumer failed with exit code {final.returncode}")
        dynamodb = client("dynamodb", clean)
        result = compare(
            features_by_key(scan_items(dynamodb, clean.features_table)),
            features_by_key(scan_items(dynamodb, chaos.features_table)),
        )
    return {
        "identical": result.identical,
        "events": events,
        "items": CHAOS_ITEMS,
        "kills": done,
        "rows_compared": result.rows_compared,
        "mismatches": len(result.mismatches),
        "examples": [m.as_dict() for m in result.mismatches[:EXAMPLES]],
        "clean_consume_seconds": round(baseline.seconds, 2),
        "seconds": round(time.monotonic() - started, 2),
    }


def named(settings: Settings, suffix: str) -> Settings:
    """The settings with every resource name (stream, tables, bucket, Glue table) suffixed."""
    return settings.model_copy(
        update={
            "stream_name": f"{settings.stream_name}-{suffix}",
            "features_table": f"{settings.features_table}-{suffix}",
            "checkpoints_table": f"{settings.checkpoints_table}-{suffix}",
            "bucket": f"{settings.bucket}-{suffix}",
            "glue_events_table": f"{settings.glue_events_table}_{suffix}",
        }
    )


@contextmanager
def moto_process() -> Iterator[str]:
    """moto in a process of its own on 127.0.0.1; yields its URL, kills it when the block ends."""
    for name, value in DUMMY_CREDENTIALS.items():
        os.environ.setdefault(name, value)  # moto accepts any; botocore must not go looking
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "infra.local", "--port", str(port)])
    try:
        deadline = time.monotonic() + STACK_DEADLINE
        while not _listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"moto did not start on port {port}")
            time.sleep(POLL_SECONDS)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.kill()
        process.wait(timeout=10)


def produce(settings: Settings, events: list[Any]) -> None:
    """Put ``events`` on the settings' stream, aggregated; fails loudly if any is not delivered."""
    kinesis = client("kinesis", settings)
    producer = EventProducer(
        kinesis, settings.stream_name, aggregate=True, aggregate_max_bytes=AGGREGATE_MAX_BYTES
    )
    producer.put_many(events, results=False)
    result = producer.close()
    if result.failed:
        raise RuntimeError(f"{len(result.failed)} events not delivered, e.g. {result.failed[0]}")


def consume(settings: Settings, *, kill_after: float | None = None) -> _Run:
    """Run ``streamrec consume --until-caught-up`` on the settings' names.

    With ``kill_after``, SIGKILL it that many seconds after its first new checkpoint; the
    returned ``returncode`` is None when the kill landed, the exit code when it finished first.
    """
    command = [sys.executable, "-m", "streamrec.cli", "consume", "--until-caught-up"]
    dynamodb = client("dynamodb", settings)
    before = _checkpoints(dynamodb, settings.checkpoints_table)
    started = time.monotonic()
    process = subprocess.Popen(command, env=_environment(settings), stderr=subprocess.DEVNULL)
    try:
        _wait(process, lambda: _checkpoints(dynamodb, settings.checkpoints_table) != before)
        first_checkpoint = time.monotonic() - started
        if kill_after is None:
            _wait(process, lambda: False)
        else:
            _wait(process, lambda: time.monotonic() >= started + first_checkpoint + kill_after)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                process.wait(timeout=10)
                return _Run(first_checkpoint, time.monotonic() - started, None)
        return _Run(first_checkpoint, time.monotonic() - started, process.returncode)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


def _wait(process: subprocess.Popen[bytes], condition: Callable[[], bool]) -> bool:
    """Poll until ``condition()`` holds (True) or the process exits (False), to a deadline."""
    deadline = time.monotonic() + RUN_DEADLINE
    while process.poll() is None:
        if condition():
            return True
        if time.monotonic() > deadline:
            raise TimeoutError(f"the consumer did not finish within {RUN_DEADLINE:.0f} s")
        time.sleep(POLL_SECONDS)
    return False


def _checkpoints(dynamodb: Any, table: str) -> dict[str, str]:
    items = scan_items(dynamodb, table)
    return {i["pk"]["S"]: i["sequence_number"]["S"] for i in items if "sequence_number" in i}


def _environment(settings: Settings) -> dict[str, str]:
    """This environment with the settings as ``STREAMREC_*`` variables and no other endpoints."""
    kept = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "STREAMREC_"))
    }
    names = ("endpoint_url", "region", "stream_name", "features_table", "checkpoints_table")
    names += ("bucket", "glue_database", "glue_events_table", "get_records_limit", "app_name")
    names += ("lake_buffer_bytes", "lake_buffer_seconds")
    ours = {f"STREAMREC_{n.upper()}": str(getattr(settings, n)) for n in names}
    ours["STREAMREC_SERVICE_ENDPOINTS"] = json.dumps(settings.service_endpoints)
    # one worker id for every restart: a restarted consumer resumes its own leases at once
    # instead of waiting out the failover time of the one it replaces
    ours["STREAMREC_WORKER_ID"] = CHAOS_WORKER_ID
    return DUMMY_CREDENTIALS | kept | ours


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0
