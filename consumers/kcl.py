"""The KCL runtime: our processors behind the Java KCL MultiLangDaemon.

The daemon takes the leases and starts one child process per shard it holds; the child speaks
the MultiLang protocol (JSON lines on stdin and stdout, ``amazon_kclpy.kcl.KCLProcess``) and
this adapter translates each call to the ``RecordProcessor`` vocabulary, running the async
processors on an event loop the child owns (their aiobotocore clients are bound to it).

Positions. The KCL splits KPL aggregates itself and sends user records with their
``subSequenceNumber``; ``decode_raw`` is told so (``RawRecord.sub_sequence``) and gives every
event the same position (sequence, sub-sequence) as the embedded runner would, so the features'
per-shard high-water marks are the same and the runtimes can take turns on one table. (The KCL
also drops a user record whose hash key lies outside its shard, which only a producer with a
stale shard map makes: docs/decisions/0008.)

Checkpoints. A batch is checkpointed (``checkpoint()``: its last user record) only after every
processor returned; a failing batch is retried in place a few times, then the child exits.
While a processor buffers (the Parquet lander's ``held_from``), the checkpoint stays at the end
of the last batch before its buffer (``checkpoint(sequence, sub)``, ``consumers.holdback``) and
follows when the buffer is written; the daemon is told to call ``processRecords`` on empty
answers too (``callProcessRecordsEvenForEmptyRecordList``), so an idle shard's buffer still
flushes on time.
``amazon_kclpy`` would log a processor's exception and report the action done, letting the next
batch and its checkpoint move past the failed one; ``SystemExit`` is the one thing it passes on.
The daemon answers a dead child by exiting (``System.exit(1)``): its leases expire and a worker
(another, or this one restarted by its supervisor) resumes at the last checkpoint. No record is
skipped; the marks make the redelivery exactly-once in effect.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Coroutine, Sequence
from typing import Any

from amazon_kclpy.kcl import CheckpointError
from amazon_kclpy.v3.processor import RecordProcessorBase

from consumers.dead_letter import DeadLetterSink
from consumers.decoding import RawRecord, decode_raw
from consumers.holdback import Holdback
from consumers.processor import Batch, RecordProcessor
from feature_store.positions import Position
from infra.logs import correlated

log = logging.getLogger(__name__)

BATCH_ATTEMPTS = 3  # a failing batch is retried in place this often before the child exits
RETRY_BASE_SECONDS = 0.5  # doubled after each failed attempt
CHECKPOINT_ATTEMPTS = 5
EXIT_CODE = 1
# The lease moved on (lost, or the daemon shut down): the next owner resumes from the last
# checkpoint, so there is nothing to retry. Any other refusal (InvalidStateException: the KCL
# says not to retry it) ends the child after the retries.
LEASE_GONE = frozenset({"ShutdownException"})


class KclShardProcessor(RecordProcessorBase):  # type: ignore[misc]
    """Drives ``processors`` for the one shard of this child process (amazon_kclpy v3 API)."""

    version = 3

    def __init__(
        self,
        processors: Sequence[RecordProcessor],
        dead_letter: DeadLetterSink,
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self._processors = list(processors)
        self._dead_letter = dead_letter
        self._loop = loop
        self._holdback = Holdback()
        self.shard_id = ""

    def initialize(self, initialize_input: Any) -> None:
        """The daemon gave this child ``shard_id``, to read from its checkpoint."""
        self.shard_id = initialize_input.shard_id
        log.info("shard %s from %s", self.shard_id, initialize_input.sequence_number)
        self._or_exit("initialize", self._each("initialize"))

    def process_records(self, process_records_input: Any) -> None:
        """Dead-letter the poison, apply the events with every processor, then checkpoint."""
        records = [kcl_raw_record(r) for r in process_records_input.records]
        first = records[0].sequence_number if records else None
        with correlated(f"{self.shard_id}/{first}"):  # every line logged for this batch
            self._process(records, process_records_input)

    def _process(self, records: list[RawRecord], process_records_input: Any) -> None:
        events, poison = decode_raw(self.shard_id, records)
        batch = Batch(self.shard_id, events, process_records_input.millis_behind_latest or 0)
        for attempt in range(1, BATCH_ATTEMPTS + 1):
            try:
                self._loop.run_until_complete(self._apply(batch, poison))
                break
            except Exception:
                if attempt == BATCH_ATTEMPTS:
                    self._exit(f"batch of {len(records)} records failed {attempt} times")
                log.warning("shard %s: batch failed, retrying", self.shard_id, exc_info=True)
                time.sleep(RETRY_BASE_SECONDS * 2 ** (attempt - 1))
        end = (
            Position(int(records[-1].sequence_number), records[-1].sub_sequence)
            if records
            else None
        )
        released = self._holdback.processed(end, len(records), self._processors, self.shard_id)
        if released is not None:
            # the whole batch: the KCL's own "last delivered record"; else a held-back position
            at = None if released == end else released
            self._checkpoint(process_records_input.checkpointer, at)

    def lease_lost(self, lease_lost_input: Any) -> None:
        """Another worker owns the shard now; no checkpoint is possible. Flush, and log (do not
        exit: the daemon would stop every shard of this worker) what fails."""
        try:
            self._loop.run_until_complete(self._each("lease_lost", "shutdown_requested"))
        except Exception:
            log.exception("shard %s: processors failed after the lease was lost", self.shard_id)

    def shard_ended(self, shard_ended_input: Any) -> None:
        """The shard closed and was read to its end: processors first, then the SHARD_END
        checkpoint the KCL needs before it starts the children."""
        self._or_exit("shard_ended", self._each("shard_ended"))
        self._checkpoint(shard_ended_input.checkpointer)

    def shutdown_requested(self, shutdown_requested_input: Any) -> None:
        """The daemon is stopping: processors flush, then a last checkpoint (skipped if a flush
        failed: the records stay for the next owner)."""
        try:
            self._loop.run_until_complete(self._each("shutdown_requested"))
        except Exception:
            log.exception("shard %s: flush on shutdown failed; not checkpointed", self.shard_id)
            return
        self._holdback.processed(None, 0, self._processors, self.shard_id)
        if self._holdback.records:
            log.error(
                "shard %s: events still held after the flush; not checkpointed", self.shard_id
            )
            return
        self._checkpoint(shutdown_requested_input.checkpointer)

    async def _apply(self, batch: Batch, poison: list[Any]) -> None:
        if poison:
            await self._dead_letter.send(poison)
        for processor in self._processors:
            await processor.process_records(batch)

    async def _each(self, method: str, fallback: str | None = None) -> None:
        """Call ``method`` (or ``fallback`` where a processor lacks it) on every processor."""
        for processor in self._processors:
            call = getattr(processor, method, None) or getattr(processor, fallback or method)
            await call(self.shard_id)

    def _checkpoint(self, checkpointer: Any, at: Position | None = None) -> None:
        """Checkpoint at ``at`` (None: the last record delivered); retried when throttled."""
        args = () if at is None else (str(at.sequence), at.sub)
        for attempt in range(1, CHECKPOINT_ATTEMPTS + 1):
            try:
                checkpointer.checkpoint(*args)
                return
            except CheckpointError as exc:
                if exc.value in LEASE_GONE:
                    log.info("shard %s: not checkpointed, lease gone (%s)", self.shard_id, exc)
                    return
                if attempt == CHECKPOINT_ATTEMPTS:
                    self._exit(f"checkpoint failed {attempt} times: {exc.value}")
                log.warning("shard %s: checkpoint failed (%s), retrying", self.shard_id, exc)
                time.sleep(RETRY_BASE_SECONDS * 2 ** (attempt - 1))

    def _or_exit(self, what: str, work: Coroutine[Any, Any, None]) -> None:
        try:
            self._loop.run_until_complete(work)
        except Exception:
            self._exit(f"{what} failed")

    def _exit(self, reason: str) -> None:
        log.exception(
            "shard %s: %s; exiting so the KCL resumes at the checkpoint", self.shard_id, reason
        )
        raise SystemExit(EXIT_CODE)


def kcl_raw_record(record: Any) -> RawRecord:
    """An ``amazon_kclpy.messages.Record`` (a user record: de-aggregated by the KCL)."""
    return RawRecord(
        record.sequence_number,
        record.partition_key,
        record.binary_data,
        record.timestamp_millis,
        sub_sequence=int(record.sub_sequence_number or 0),
    )
