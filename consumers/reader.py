"""One shard's read loop under a held lease: poll, decode, process, checkpoint.

It resumes after the lease's checkpoint (or at TRIM_HORIZON) and polls GetRecords within
Kinesis's limit of five calls per second per shard, waiting ``idle_interval`` more after an empty
answer. A throttled call (ProvisionedThroughputExceeded) is retried with the same iterator after
an exponential back-off with jitter; an expired iterator is replaced by one after the last record
processed.
A batch that fails (a processor error, the dead-letter sink failing) is read again from the
checkpoint after a back-off, never skipped; after ``max_failures`` failures in a row its error
surfaces. Checkpoints are conditional on the lease: once it is lost, the loop stops with
``LeaseLost`` and the processors hear ``lease_lost``.

A processor that buffers (the Parquet lander) holds events past ``process_records``; the
checkpoint then stays before the oldest held event (``consumers.holdback``) and follows once it
is written. While something is held, an empty answer still calls ``process_records`` with an
empty batch, so a buffer's age is checked on an idle shard; stopping calls
``shutdown_requested`` (the flush) and then checkpoints what it made durable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import ClientError

from consumers.checkpoints import SHARD_END
from consumers.dead_letter import DeadLetterSink
from consumers.decoding import decode
from consumers.holdback import Holdback, record_end
from consumers.leases import Lease, LeaseLost, LeaseTable
from consumers.options import ReadOptions
from consumers.pacing import age_ms, backoff, sleep_until
from consumers.processor import Batch, RecordProcessor
from consumers.stats import ShardProgress
from feature_store.positions import Position
from infra.errors import THROTTLING_CODES, error_code, translate
from infra.logs import correlated

log = logging.getLogger(__name__)

MIN_POLL_INTERVAL = 0.2  # seconds: Kinesis allows 5 GetRecords calls per second per shard


class ShardReader:
    """Reads leased shards of one stream and drives ``processors`` with their records."""

    def __init__(
        self,
        kinesis: Any,
        stream_name: str,
        leases: LeaseTable,
        processors: Sequence[RecordProcessor],
        dead_letter: DeadLetterSink,
        options: ReadOptions,
    ) -> None:
        self._kinesis, self._stream = kinesis, stream_name
        self._leases = leases
        self._processors = list(processors)
        self._dead_letter = dead_letter
        self._options = options

    async def read(
        self, lease: Lease, progress: ShardProgress, stop: asyncio.Event, until_caught_up: bool
    ) -> None:
        """Read ``lease``'s shard until ``stop`` is set, it ends (SHARD_END checkpoint), or
        (``until_caught_up``) an empty answer at its tip. Raises ``LeaseLost``."""
        shard_id = lease.shard_id
        progress.checkpoint, progress.last_progress = lease.checkpoint, time.monotonic()
        for processor in self._processors:
            await processor.initialize(shard_id)
        holdback = Holdback()
        try:
            await self._loop(lease, progress, stop, until_caught_up, holdback)
            if not progress.ended and not lease.lost:
                for processor in self._processors:
                    await processor.shutdown_requested(shard_id)
                released = holdback.processed(None, 0, self._processors, shard_id)
                await self._advance(lease, progress, released, holdback)
        except LeaseLost:
            lease.lost = True
        if lease.lost:
            progress.leases_lost += 1
            for processor in self._processors:
                await processor.lease_lost(shard_id)
            raise LeaseLost(f"lease of {shard_id} lost")

    async def _loop(
        self,
        lease: Lease,
        progress: ShardProgress,
        stop: asyncio.Event,
        until_caught_up: bool,
        holdback: Holdback,
    ) -> None:
        iterator: str | None = await self._iterator(lease.shard_id, progress.checkpoint)
        throttled = 0
        while iterator is not None and not stop.is_set() and not lease.lost:
            started = time.monotonic()
            try:
                response = await self._kinesis.get_records(
                    ShardIterator=iterator, Limit=self._options.limit
                )
            except ClientError as exc:
                throttled = await self._on_read_error(lease, progress, exc, throttled, stop)
                if error_code(exc) == "ExpiredIteratorException":
                    # after the last record processed: with checkpoints held back (buffering
                    # processors) the checkpoint lies before records that were processed
                    after = holdback.last_record or progress.checkpoint
                    iterator = await self._iterator(lease.shard_id, after)
                await sleep_until(started + MIN_POLL_INTERVAL, stop)  # refused calls count too
                continue
            throttled = 0
            iterator, records = await self._take(lease, progress, response, stop, holdback)
            progress.last_progress = time.monotonic()
            if records is None:  # the batch failed: read again from the checkpoint
                await sleep_until(started + MIN_POLL_INTERVAL, stop)
                continue
            if iterator is None:
                await self._end(lease, progress, holdback)
                return
            progress.caught_up = not records and progress.millis_behind_latest == 0
            if until_caught_up and progress.caught_up:
                return
            idle = self._options.idle_interval if not records else 0.0
            await sleep_until(started + idle + MIN_POLL_INTERVAL, stop)

    async def _take(
        self,
        lease: Lease,
        progress: ShardProgress,
        response: dict[str, Any],
        stop: asyncio.Event,
        holdback: Holdback,
    ) -> tuple[str | None, list[dict[str, Any]] | None]:
        """Process one answer; the next iterator (None at the end of the shard) and the records
        that took effect, or an iterator at the checkpoint and None after a failed batch."""
        records = response.get("Records", [])
        progress.millis_behind_latest = response.get("MillisBehindLatest")
        progress.iterator_age_ms = age_ms(records, progress.millis_behind_latest)
        if records or holdback.records:  # empty while something is held: buffers may be due
            first = records[0]["SequenceNumber"] if records else progress.checkpoint
            with correlated(f"{lease.shard_id}/{first}"):  # every line logged for this batch
                try:
                    await self._process(lease, records, progress, holdback)
                except LeaseLost:
                    raise
                except Exception as exc:
                    # back to the last checkpoint: the batches after it are read again
                    progress.pending = 0
                    holdback.reset()
                    await self._back_off(lease.shard_id, progress, exc, stop)
                    return await self._iterator(lease.shard_id, progress.checkpoint), None
            if records:
                progress.failures = progress.stuck_in_a_row = 0
        return response.get("NextShardIterator"), records

    async def _on_read_error(
        self,
        lease: Lease,
        progress: ShardProgress,
        exc: ClientError,
        throttled: int,
        stop: asyncio.Event,
    ) -> int:
        """Count a refused GetRecords and wait out a throttle; the throttles in a row."""
        code = error_code(exc)
        if code == "ExpiredIteratorException":
            progress.expired_iterators += 1
            log.info(
                "shard %s: iterator expired; resuming after %s", lease.shard_id, lease.checkpoint
            )
            return throttled
        if code not in THROTTLING_CODES:
            raise translate("GetRecords", exc) from exc
        progress.throttles += 1
        progress.last_progress = time.monotonic()  # the loop is alive, only held back
        delay = backoff(self._options.retry_delay, self._options.max_retry_delay, throttled)
        log.info("shard %s: GetRecords throttled; next call in %.2fs", lease.shard_id, delay)
        await sleep_until(time.monotonic() + delay, stop)
        return throttled + 1

    async def _back_off(
        self, shard_id: str, progress: ShardProgress, exc: Exception, stop: asyncio.Event
    ) -> None:
        """Count a failed batch; wait before it is retried, or raise once it failed
        ``max_failures`` times in a row."""
        progress.failures += 1
        progress.errors += 1
        limit = self._options.max_failures
        if limit is not None and progress.failures >= limit:
            raise exc
        delay = min(
            self._options.max_retry_delay, self._options.retry_delay * 2 ** (progress.failures - 1)
        )
        log.warning(
            "shard %s: batch failed (%s, %d in a row); retrying from checkpoint %s in %.1fs",
            shard_id,
            exc,
            progress.failures,
            progress.checkpoint,
            delay,
        )
        await sleep_until(time.monotonic() + delay, stop)

    async def _iterator(self, shard_id: str, checkpoint: str | None) -> str:
        kwargs: dict[str, Any] = {"StreamName": self._stream, "ShardId": shard_id}
        if checkpoint is None:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        else:
            kwargs |= {
                "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                "StartingSequenceNumber": checkpoint,
            }
        response = await self._kinesis.get_shard_iterator(**kwargs)
        return str(response["ShardIterator"])

    async def _process(
        self,
        lease: Lease,
        records: list[dict[str, Any]],
        progress: ShardProgress,
        holdback: Holdback,
    ) -> None:
        """Every processor applies the batch (empty: no records, only a check of the buffers);
        then the checkpoint moves as far as nothing held stands before it."""
        progress.pending = len(records)
        events, poison = decode(lease.shard_id, records)
        if poison:
            await self._dead_letter.send(poison)
        batch = Batch(lease.shard_id, events, progress.millis_behind_latest or 0)
        for processor in self._processors:
            await processor.process_records(batch)
        end = record_end(records[-1]["SequenceNumber"]) if records else None
        released = holdback.processed(end, len(records), self._processors, lease.shard_id)
        await self._advance(lease, progress, released, holdback)
        progress.pending = 0
        progress.records += len(records)
        progress.events += len(events)
        progress.poison += len(poison)

    async def _advance(
        self, lease: Lease, progress: ShardProgress, to: Position | None, holdback: Holdback
    ) -> None:
        """Checkpoint at the end of the record ``to`` (None: the checkpoint has not moved)."""
        progress.buffered = holdback.records
        if to is None:
            return
        sequence_number = str(to.sequence)  # Kinesis sequence numbers have no leading zeros
        await self._leases.checkpoint(lease, sequence_number)
        progress.checkpoint, progress.checkpointed_at = sequence_number, time.time()

    async def _end(self, lease: Lease, progress: ShardProgress, holdback: Holdback) -> None:
        for processor in self._processors:
            await processor.shard_ended(lease.shard_id)
        holdback.processed(None, 0, self._processors, lease.shard_id)
        if holdback.records:  # SHARD_END would pass them: they would never be read again
            raise RuntimeError(f"shard {lease.shard_id}: a processor held events past shard_ended")
        await self._leases.checkpoint(lease, SHARD_END)
        progress.checkpoint, progress.ended, progress.caught_up = SHARD_END, True, True
        progress.checkpointed_at = time.time()
