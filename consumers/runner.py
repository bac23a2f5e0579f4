"""The embedded runner: reads every shard of a stream with aiobotocore in one asyncio process.

Per shard it resumes after the last checkpoint (or at TRIM_HORIZON), polls GetRecords within
Kinesis's limit of five calls per second per shard, decodes each record once (poison goes to the
dead-letter prefix), drives every processor in order, and checkpoints only after all of them
returned. A batch that fails (a processor error, the dead-letter sink failing) is read again from
the shard's last checkpoint after an exponential back-off, never skipped; after ``max_failures``
failures in a row the error surfaces from ``run`` and the other shards stop too.

This runtime serves one process. Past one machine the same processors run under the KCL.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from consumers.checkpoints import SHARD_END, DynamoCheckpointer
from consumers.dead_letter import DeadLetterSink, Poison
from consumers.decoding import RawRecord, decode_raw
from consumers.processor import Batch, RecordProcessor
from consumers.tasks import gather_or_cancel
from feature_store.transforms import Sequenced
from infra.errors import error_code, translate

log = logging.getLogger(__name__)

MIN_POLL_INTERVAL = 0.2  # seconds: Kinesis allows 5 GetRecords calls per second per shard
GET_RECORDS_LIMIT = 10_000
# A batch failing this many times in a row stops the runner with its error (None: retry forever,
# as the KCL does). A process supervisor restarts it from the checkpoints.
DEFAULT_MAX_FAILURES = 5


@dataclass
class ShardProgress:
    """What the runner knows of one shard, for progress bars and lag reporting."""

    records: int = 0  # Kinesis records (an aggregated record counts once)
    events: int = 0  # valid events decoded from them
    poison: int = 0
    millis_behind_latest: int | None = None
    checkpoint: str | None = None
    caught_up: bool = False
    ended: bool = False
    failures: int = 0  # batches that failed in a row (reset by a success)
    errors: int = 0  # batches that failed in all


@dataclass
class RunnerStats:
    """Progress of every shard the runner reads."""

    shards: dict[str, ShardProgress] = field(default_factory=dict)

    @property
    def records(self) -> int:
        """Records read from every shard, poison included."""
        return sum(p.records for p in self.shards.values())

    @property
    def events(self) -> int:
        """Valid events decoded from every shard (aggregated records counted by their events)."""
        return sum(p.events for p in self.shards.values())

    @property
    def poison(self) -> int:
        """Records sent to the dead-letter prefix."""
        return sum(p.poison for p in self.shards.values())


class EmbeddedRunner:
    """Polls every shard of ``stream_name`` and drives ``processors`` with what it reads."""

    def __init__(
        self,
        kinesis: Any,
        stream_name: str,
        checkpointer: DynamoCheckpointer,
        processors: Sequence[RecordProcessor],
        dead_letter: DeadLetterSink,
        *,
        idle_interval: float = 1.0,
        limit: int = GET_RECORDS_LIMIT,
        max_failures: int | None = DEFAULT_MAX_FAILURES,
        retry_delay: float = 0.5,
        max_retry_delay: float = 30.0,
    ) -> None:
        self._kinesis = kinesis
        self._stream = stream_name
        self._checkpointer = checkpointer
        self._processors = list(processors)
        self._dead_letter = dead_letter
        self._idle = max(idle_interval, MIN_POLL_INTERVAL)
        self._limit = limit
        self._max_failures = max_failures
        self._retry_delay, self._max_retry_delay = retry_delay, max_retry_delay
        self.stats = RunnerStats()

    async def run(
        self, *, until_caught_up: bool = False, stop: asyncio.Event | None = None
    ) -> None:
        """Read every shard until ``stop`` is set, or (``until_caught_up``) until every shard
        returned an empty batch at the tip of the stream or ended."""
        stop = stop or asyncio.Event()
        shards = await self._list_shards()
        for shard_id in shards:
            self.stats.shards[shard_id] = ShardProgress()
        # a failing shard cancels the others, so no shard runs on unobserved
        await gather_or_cancel(self._run_shard(s, stop, until_caught_up) for s in shards)

    async def _list_shards(self) -> list[str]:
        shards: list[str] = []
        kwargs: dict[str, Any] = {"StreamName": self._stream}
        while True:
            response = await self._kinesis.list_shards(**kwargs)
            shards += [s["ShardId"] for s in response["Shards"]]
            if not response.get("NextToken"):
                return shards
            kwargs = {"NextToken": response["NextToken"]}

    async def _run_shard(self, shard_id: str, stop: asyncio.Event, until_caught_up: bool) -> None:
        progress = self.stats.shards[shard_id]
        progress.checkpoint = await self._checkpointer.get(shard_id)
        if progress.checkpoint == SHARD_END:
            progress.ended = progress.caught_up = True
            return
        for processor in self._processors:
            await processor.initialize(shard_id)
        iterator = await self._iterator(shard_id, progress.checkpoint)
        while not stop.is_set():
            started = time.monotonic()
            try:
                response = await self._kinesis.get_records(
                    ShardIterator=iterator, Limit=self._limit
                )
            except ClientError as exc:
                if error_code(exc) != "ExpiredIteratorException":
                    raise translate("GetRecords", exc) from exc
                iterator = await self._iterator(shard_id, progress.checkpoint)
                continue
            records = response.get("Records", [])
            progress.millis_behind_latest = response.get("MillisBehindLatest")
            if records:
                try:
                    await self._process(shard_id, records, progress)
                except Exception as exc:
                    # back to the last checkpoint: the batch is read again, never skipped
                    await self._back_off(shard_id, progress, exc, stop)
                    iterator = await self._iterator(shard_id, progress.checkpoint)
                    continue
                progress.failures = 0
            iterator = response.get("NextShardIterator")
            if iterator is None:
                await self._end_shard(shard_id, progress)
                return
            progress.caught_up = not records and progress.millis_behind_latest == 0
            if until_caught_up and progress.caught_up:
                break
            pause = (self._idle if not records else 0.0) + MIN_POLL_INTERVAL
            await _sleep_until(started + pause, stop)
        for processor in self._processors:
            await processor.shutdown_requested(shard_id)

    async def _back_off(
        self, shard_id: str, progress: ShardProgress, exc: Exception, stop: asyncio.Event
    ) -> None:
        """Count a failed batch; wait before it is retried, or raise once it failed
        ``max_failures`` times in a row."""
        progress.failures += 1
        progress.errors += 1
        if self._max_failures is not None and progress.failures >= self._max_failures:
            raise exc
        delay = min(self._max_retry_delay, self._retry_delay * 2 ** (progress.failures - 1))
        log.warning(
            "shard %s: batch failed (%s, %d in a row); retrying from checkpoint %s in %.1fs",
            shard_id,
            exc,
            progress.failures,
            progress.checkpoint,
            delay,
        )
        await _sleep_until(time.monotonic() + delay, stop)

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
        self, shard_id: str, records: list[dict[str, Any]], progress: ShardProgress
    ) -> None:
        events, poison = decode(shard_id, records)
        if poison:
            await self._dead_letter.send(poison)
        batch = Batch(shard_id, events, progress.millis_behind_latest or 0)
        for processor in self._processors:
            await processor.process_records(batch)
        last = records[-1]["SequenceNumber"]
        await self._checkpointer.set(shard_id, last)
        progress.checkpoint = last
        progress.records += len(records)
        progress.events += len(events)
        progress.poison += len(poison)

    async def _end_shard(self, shard_id: str, progress: ShardProgress) -> None:
        for processor in self._processors:
            await processor.shard_ended(shard_id)
        await self._checkpointer.set(shard_id, SHARD_END)
        progress.checkpoint, progress.ended, progress.caught_up = SHARD_END, True, True


def decode(shard_id: str, records: list[dict[str, Any]]) -> tuple[list[Sequenced], list[Poison]]:
    """Split GetRecords output into valid events (in order) and poison records (see
    ``consumers.decoding.decode_raw``: KPL aggregates yield their user records)."""
    return decode_raw(
        shard_id,
        (
            RawRecord(
                r["SequenceNumber"],
                r["PartitionKey"],
                r["Data"],
                int(r["ApproximateArrivalTimestamp"].timestamp() * 1000),
            )
            for r in records
        ),
    )


async def _sleep_until(deadline: float, stop: asyncio.Event) -> None:
    """Wait until ``deadline`` (monotonic) or until ``stop`` is set, whichever comes first."""
    remaining = deadline - time.monotonic()
    if remaining > 0:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=remaining)
