"""``streamrec consume`` stopped with SIGTERM: it finishes the batch in hand, flushes the lander's
buffer, checkpoints them and releases its leases at once, so another runner resumes right away,
before any failover."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter

from consumers.decoding import decode
from consumers.leases import LeaseTable
from consumers.runner import LeaseOptions
from feature_store.positions import Position
from infra.clients import client
from infra.settings import Settings
from producers.producer import EventProducer
from producers.synthetic import synthetic_events
from streamrec.wiring import build_runner, pipeline
from tests.polling import eventually
from tests.streams import read_records

EVENTS = 400
WORKER = "sigterm-worker"
FAILOVER = 30.0  # far longer than the test: a lease left held would show as a timeout


def environment(settings: Settings) -> dict[str, str]:
    """This environment with the settings' names as ``STREAMREC_*`` variables."""
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT", "STREAMREC_"))}
    names = ("endpoint_url", "stream_name", "features_table", "checkpoints_table", "bucket")
    names += ("glue_database", "app_name")
    ours = {f"STREAMREC_{n.upper()}": str(getattr(settings, n)) for n in names}
    ours |= {
        "STREAMREC_WORKER_ID": WORKER,
        "STREAMREC_GET_RECORDS_LIMIT": "10",  # many small batches: SIGTERM lands mid-work
        # the lander buffers about two batches (20 events of ~150 B): checkpoints are held back
        # between its flushes, and SIGTERM must flush the buffer before the last checkpoint
        "STREAMREC_LAKE_BUFFER_BYTES": "3000",
        "STREAMREC_LAKE_BUFFER_SECONDS": "600",
        "STREAMREC_IDLE_INTERVAL": "0.1",
        "STREAMREC_FAILOVER_TIME": str(FAILOVER),
        "STREAMREC_LEASE_RENEWAL_INTERVAL": "0.2",
        "STREAMREC_SERVICE_ENDPOINTS": json.dumps({}),
    }
    credentials = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
    return credentials | kept | ours


async def test_sigterm_checkpoints_the_batch_in_hand_and_releases_the_leases(
    applied: Settings,
) -> None:
    events = synthetic_events(EVENTS, users=20, items=40, seed=41)
    with EventProducer(client("kinesis", applied), applied.stream_name) as producer:
        producer.put_many(events, results=False)
    command = [sys.executable, "-m", "streamrec.cli", "consume"]
    process = subprocess.Popen(command, env=environment(applied), stderr=subprocess.PIPE, text=True)
    async with pipeline(applied) as p:
        leases = LeaseTable(p.clients.dynamodb, applied.checkpoints_table, applied.app_name, "t")

        async def working() -> bool:
            assert process.poll() is None, "the consumer exited early"
            return any(le.owner == WORKER and le.checkpoint for le in await leases.scan())

        try:
            await eventually(working, 60, "the consumer checkpointed", interval=0.05)
            process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            _, stderr = await asyncio.to_thread(process.communicate, timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        stopped = time.monotonic() - signalled
        assert process.returncode == 0, stderr[-2000:]
        assert stopped < 10, stopped
        scanned = await leases.scan()
        assert scanned and [le.owner for le in scanned] == [None] * len(scanned)  # released

        # every event it applied is below a checkpoint: the batch in hand was checkpointed
        consumed = int(re.search(r"consumed (\d+) events", stderr)[1])
        marks = {le.shard_id: le.checkpoint for le in scanned}
        placed = [
            s
            for shard, records in read_records(
                client("kinesis", applied), applied.stream_name
            ).items()
            for s in decode(shard, records)[0]
        ]
        covered = sum(
            1
            for s in placed
            if marks.get(s.shard_id) and s.position <= Position.parse(marks[s.shard_id])
        )
        assert 0 < consumed == covered < EVENTS

        # another worker takes the released leases at once and finishes: each event once
        runner = build_runner(
            applied,
            p.clients,
            [p.features],
            worker_id="next",
            idle_interval=0,
            lease_options=LeaseOptions(failover_time=FAILOVER),
        )
        started = time.monotonic()
        await asyncio.wait_for(runner.run(until_caught_up=True), FAILOVER / 2)
        assert time.monotonic() - started < 5
        assert runner.stats.events == EVENTS - consumed
        totals = Counter(e.item_id for e in events)
        assert {f.item_id: f.total for f in await p.online.items(sorted(totals)) if f} == totals
