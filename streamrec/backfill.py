"""``streamrec replay --into-features``: rebuild online features from a range of the lake.

The range is read with ``OfflineStore.read_range`` and fed through the live ``FeatureProcessor``
into the settings' features table, as the synthetic shard of ``consumers.backfill``. Progress is
kept in the checkpoints table after every batch, so rerunning the same command resumes; a range
whose content changed since is refused (``--restart`` starts over). Progress bar and messages go
to stderr. Exit status: 0 when every event took effect (now or in an earlier run), 1 when the
replay stopped, the range held no events or changed, 2 for a missing features table.
"""

from __future__ import annotations

import asyncio
import sys
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from botocore.exceptions import BotoCoreError, ClientError
from tqdm import tqdm

from consumers.backfill import (
    BackfillProgress,
    Progress,
    backfill,
    fingerprint,
    replay_order,
)
from consumers.features import FeatureProcessor
from feature_store.online import OnlineStore
from infra.clients import async_client
from infra.errors import StreamrecError, error_code
from infra.settings import Settings
from producers.events import Event
from streamrec.parts import offline_store_of
from streamrec.replay import nothing_found

# what stops a replay without corrupting it: the next run resumes after the last full batch
STOPPING_ERRORS = (StreamrecError, BotoCoreError, ClientError, ConnectionError, RuntimeError)


def run_backfill(
    settings: Settings,
    *,
    start_ms: int,
    end_ms: int,
    max_lateness_ms: int | None,
    batch_size: int,
    restart: bool = False,
    err: TextIO | None = None,
) -> int:
    """Replay event time ``[start_ms, end_ms)`` into the features table; the exit status."""
    return asyncio.run(
        _run(settings, start_ms, end_ms, max_lateness_ms, batch_size, restart, err or sys.stderr)
    )


async def _run(
    settings: Settings,
    start_ms: int,
    end_ms: int,
    max_lateness_ms: int | None,
    batch_size: int,
    restart: bool,
    err: TextIO,
) -> int:
    table = settings.features_table
    async with (
        async_client("dynamodb", settings) as dynamodb,
        async_client("s3", settings) as s3,
        async_client("glue", settings) as glue,
    ):
        rows = await _table_rows(dynamodb, table)
        if rows is None:
            _say(err, f"features table {table!r} does not exist: create it (streamrec infra apply)")
            return 2
        found = await offline_store_of(settings, s3, glue).read_range(
            start_ms, end_ms, max_lateness_ms
        )
        if not found.events:
            _say(err, nothing_found(found, start_ms, end_ms))
            return 1
        events = replay_order(found.events)
        digest = fingerprint(events)
        store = BackfillProgress(dynamodb, settings.checkpoints_table, settings.app_name)
        previous = await store.get(table, start_ms, end_ms)
        stored = None if restart else previous
        start = _start(stored, len(events), digest, table, err)
        if start is None:
            return 1
        if start == len(events):
            return 0
        if previous is None and rows:  # never replayed into: the rows came from elsewhere
            _say(
                err,
                f"warning: features table {table!r} already holds rows; events it took from the "
                "live stream are counted again (replay into an empty table to rebuild)",
            )
        processor = FeatureProcessor(OnlineStore(dynamodb, table))
        key = (table, start_ms, end_ms)
        return await _apply(events, digest, start, batch_size, processor, store, key, err)


def _start(stored: Progress | None, count: int, digest: str, table: str, err: TextIO) -> int | None:
    """Where to start (``count``: nothing to do), or None when the range changed."""
    if stored is None:
        return 0
    if (stored.events, stored.fingerprint) != (count, digest):
        _say(
            err,
            f"the range changed since the replay into {table!r} of {_iso(stored.updated_ms)} "
            f"({stored.events} events then, {count} now, or their content differs): give "
            "--restart to start over (into an empty features table: rows keep what they took)",
        )
        return None
    if stored.complete:
        _say(
            err,
            f"already complete: all {count} events were applied into {table!r} "
            f"(finished {_iso(stored.updated_ms)}); --restart applies them again",
        )
        return count
    _say(err, f"resuming at event {stored.applied} of {count} (an earlier run stopped there)")
    return stored.applied


async def _apply(
    events: list[Event],
    digest: str,
    start: int,
    batch_size: int,
    processor: FeatureProcessor,
    store: BackfillProgress,
    key: tuple[str, int, int],
    err: TextIO,
) -> int:
    """Run the batches with a progress bar; print the summary or why it stopped. ``key`` is the
    progress item's (features table, start, end)."""
    applied = start
    await store.put(*key, Progress(len(events), digest, start))
    started = time.monotonic()
    with tqdm(
        total=len(events), initial=start, desc="replay", unit="ev", file=err, dynamic_ncols=True
    ) as bar:

        async def done(count: int) -> None:
            nonlocal applied
            await store.put(*key, Progress(len(events), digest, count))
            bar.update(count - applied)
            applied = count

        try:
            await backfill(events, processor, start=start, batch_size=batch_size, done=done)
        except STOPPING_ERRORS as exc:
            bar.close()
            _say(
                err,
                f"stopped after {applied} of {len(events)} events: {exc}; "
                "rerun the same command to resume",
            )
            return 1
    seconds = time.monotonic() - started
    stats = processor.stats
    per_event = stats.rows_written / stats.events if stats.events else 0.0
    print(
        f"replayed {stats.events} events into features table {key[0]}: "
        f"{stats.rows_written} rows written, {per_event:.3f} writes/event, {seconds:.1f} s",
        file=err,
    )
    return 0


async def _table_rows(dynamodb: Any, table: str) -> bool | None:
    """Whether ``table`` holds any row; None when it does not exist."""
    try:
        page = await dynamodb.scan(TableName=table, Limit=1, Select="COUNT")
    except ClientError as exc:
        if error_code(exc) == "ResourceNotFoundException":
            return None
        raise
    return bool(page["Count"]) or "LastEvaluatedKey" in page


def _say(err: TextIO, message: str) -> None:
    print(f"streamrec replay: {message}", file=err)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=UTC).isoformat(timespec="seconds")
