"""``streamrec replay``: an event-time range of the offline lake put back on a Kinesis stream.

Reads the range with ``OfflineStore.read_range`` (arrival partitions pruned by a lateness bound),
then sends the events in (timestamp, event_id) order through the sync ``EventProducer``, as fast
as possible or paced by ``producers.replay``, with a progress bar on stderr. Exit status: 0 when
every event was written, 1 when some were not or the range held none, 2 for a bad target stream.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError
from tqdm import tqdm

from feature_store.lake import Partition
from feature_store.offline import RangeRead
from infra.clients import client
from infra.errors import error_code
from infra.settings import Settings
from producers.events import Event
from producers.producer import EventProducer, FailedEvent
from producers.replay import replay
from streamrec.wiring import offline_store

SHOWN_FAILURES = 5


def run_replay(
    settings: Settings,
    *,
    start_ms: int,
    end_ms: int,
    stream: str,
    speed: float | None,
    max_lateness_ms: int | None,
    err: TextIO | None = None,
) -> int:
    """Replay events of event time in ``[start_ms, end_ms)`` into ``stream``; the exit status.

    Messages and the progress bar go to ``err`` (stderr by default).
    """
    err = err or sys.stderr
    kinesis = client("kinesis", settings)
    problem = stream_problem(kinesis, stream)
    if problem:
        print(f"streamrec replay: {problem}", file=err)
        return 2
    found = asyncio.run(_read(settings, start_ms, end_ms, max_lateness_ms))
    if not found.events:
        print(f"streamrec replay: {nothing_found(found, start_ms, end_ms)}", file=err)
        return 1
    failed, sent = _send(kinesis, stream, found.events, speed, err)
    print(
        f"replayed {sent} of {len(found.events)} events into {stream} "
        f"({found.partitions} partitions, {found.objects} objects read)",
        file=err,
    )
    for f in failed[:SHOWN_FAILURES]:
        print(f"  not written: {f.event_id}: {f.error_code}: {f.message}", file=err)
    if len(failed) > SHOWN_FAILURES:
        print(f"  ... and {len(failed) - SHOWN_FAILURES} more", file=err)
    return 1 if failed or sent < len(found.events) else 0


def stream_problem(kinesis: Any, stream: str) -> str | None:
    """Why events cannot be put on ``stream`` (absent, not active), or None."""
    try:
        summary = kinesis.describe_stream_summary(StreamName=stream)["StreamDescriptionSummary"]
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return f"stream {stream!r} does not exist: create it, or check --into-stream"
        raise
    status = summary["StreamStatus"]
    if status not in ("ACTIVE", "UPDATING"):
        return f"stream {stream!r} is {status}, not ACTIVE"
    return None


def nothing_found(found: RangeRead, start_ms: int, end_ms: int) -> str:
    """The message for an empty range: what was scanned, and how to scan more."""
    head = f"no events with event time in [{_iso(start_ms)}, {_iso(end_ms)})"
    scanned = f"{found.partitions} partitions ({found.objects} objects)"
    if found.window is None:
        return f"{head}: scanned every partition, {scanned}"
    first, last = (_partition(p) for p in found.window)
    return (
        f"{head}: scanned {scanned} of arrival time {first} to {last}. Events that arrived "
        "later than --max-lateness after their event time are in later partitions: raise "
        "--max-lateness, or give --max-lateness none to scan every partition"
    )


async def _read(
    settings: Settings, start_ms: int, end_ms: int, max_lateness_ms: int | None
) -> RangeRead:
    async with offline_store(settings) as offline:
        return await offline.read_range(start_ms, end_ms, max_lateness_ms)


def _send(
    kinesis: Any, stream: str, events: Sequence[Event], speed: float | None, err: TextIO
) -> tuple[list[FailedEvent], int]:
    """Replay through the producer, flushing each call so pacing holds; (failed, sent)."""
    producer = EventProducer(kinesis, stream, aggregate=True)  # consumers de-aggregate
    failed: list[FailedEvent] = []
    sent = 0

    def sink(chunk: Sequence[Event]) -> None:
        nonlocal sent
        producer.put_many(chunk)
        result = producer.flush()
        sent += result.sent
        failed.extend(result.failed)

    with tqdm(total=len(events), desc="replay", unit="ev", file=err) as bar:
        try:
            replay(events, sink, speed=speed, progress=bar.update)
        except (BotoCoreError, ClientError, ConnectionError) as exc:
            print(f"streamrec replay: stopped, Kinesis failed: {exc}", file=err)
    try:
        result = producer.close()  # sends what a failed call left in the buffer
        sent += result.sent
        failed.extend(result.failed)
    except (BotoCoreError, ClientError, ConnectionError) as exc:
        print(f"streamrec replay: buffered events not written: {exc}", file=err)
    return failed, sent


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat().replace("+00:00", "Z")


def _partition(partition: Partition) -> str:
    return f"dt={partition[0]}/hour={partition[1]}"
