"""The Lambda runtime: our processors behind a Kinesis event source mapping.

Lambda polls the shards, keeps the checkpoints and invokes the function with a batch of records
(usually of one shard). This adapter groups the records by shard (the shard id is the part of
``eventID`` before the colon), decodes them with the same ``decode_raw`` as the embedded runner
(KPL aggregates are split, poison goes to the dead-letter prefix), drives every processor with
one ``Batch`` per shard, and answers with Lambda's partial batch response::

    {"batchItemFailures": [{"itemIdentifier": "<sequence number>"}, ...]}

For a shard whose processing failed it names the first record of that shard's batch: a batch is
durable only when every processor returned, so nothing of it may be treated as done. Lambda
checkpoints the records before that one and retries from it; no record is ever skipped, and the
features' high-water marks make the retry exactly-once in effect. Poison records are not
failures: they are stored and the shard moves on. An empty list means the whole batch is done.

Configure the event source mapping with ``FunctionResponseTypes=["ReportBatchItemFailures"]``;
without it Lambda ignores the answer and retries (or drops, after ``MaximumRetryAttempts``) the
whole batch. ``BisectBatchOnFunctionError`` is unnecessary with partial responses (the retry
already starts at the failed record). An on-failure destination receives only the batch's
metadata (shard and sequence range), not the records: keep the stream's retention longer than
the retry window so the records can be re-read. ``ParallelizationFactor`` above 1 is unsafe:
it splits a shard by partition key, so the high-water marks (one per shard) would move past
records of other keys still in flight.

Lambda keeps no state between invocations that a checkpoint could wait for, so a processor
that buffers (the Parquet lander) is flushed (``shutdown_requested``) before the shard's batch
counts as done; Lambda's own ``MaximumBatchingWindowInSeconds`` and ``BatchSize`` are the
buffer there (Firehose-like files need a large window).

Processors are async and their aiobotocore clients are bound to one event loop, so
``make_handler`` keeps a loop for the life of the execution environment and builds the
processors on the first (cold) invocation.
"""

from __future__ import annotations

import asyncio
import base64
import logging
from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from consumers.dead_letter import DeadLetterSink
from consumers.decoding import RawRecord, decode_raw
from consumers.holdback import Holding, oldest_hold
from consumers.processor import Batch, RecordProcessor
from infra.logs import correlated

log = logging.getLogger(__name__)

LambdaEvent = Mapping[str, Any]
LambdaResponse = dict[str, list[dict[str, str]]]


class KinesisBatchHandler:
    """Drives ``processors`` with the records of one Lambda invocation."""

    def __init__(self, processors: Sequence[RecordProcessor], dead_letter: DeadLetterSink) -> None:
        self._processors = list(processors)
        self._dead_letter = dead_letter
        self._initialized: set[str] = set()

    async def handle(self, event: LambdaEvent) -> LambdaResponse:
        """Process every shard of ``event`` concurrently; the partial batch response.

        A shard that fails is reported by its first record's sequence number and logged;
        the other shards are unaffected.
        """
        by_shard = shard_records(event)
        results = await asyncio.gather(
            *(self._process(shard, records) for shard, records in by_shard.items()),
            return_exceptions=True,
        )
        failures: list[dict[str, str]] = []
        for (shard_id, records), result in zip(by_shard.items(), results, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result  # cancellation, KeyboardInterrupt: not a record's failure
                first = records[0].sequence_number
                log.error("shard %s failed from %s", shard_id, first, exc_info=result)
                failures.append({"itemIdentifier": first})
        return {"batchItemFailures": failures}

    async def _process(self, shard_id: str, records: list[RawRecord]) -> None:
        first = records[0].sequence_number if records else None
        with correlated(f"{shard_id}/{first}"):  # every line logged for this batch
            await self._process_correlated(shard_id, records)

    async def _process_correlated(self, shard_id: str, records: list[RawRecord]) -> None:
        if shard_id not in self._initialized:
            for processor in self._processors:
                await processor.initialize(shard_id)
            self._initialized.add(shard_id)
        events, poison = decode_raw(shard_id, records)
        if poison:
            await self._dead_letter.send(poison)
        batch = Batch(shard_id, events)
        for processor in self._processors:
            await processor.process_records(batch)
        if oldest_hold(self._processors, shard_id) is not None:  # durable before returning
            for processor in self._processors:
                if isinstance(processor, Holding):
                    await processor.shutdown_requested(shard_id)
            if oldest_hold(self._processors, shard_id) is not None:
                raise RuntimeError(f"shard {shard_id}: events still held after the flush")


def shard_records(event: LambdaEvent) -> dict[str, list[RawRecord]]:
    """The records of a Lambda Kinesis event by shard id, each shard's in delivery order."""
    by_shard: dict[str, list[RawRecord]] = defaultdict(list)
    for record in event.get("Records", []):
        kinesis = record["kinesis"]
        shard_id = record["eventID"].partition(":")[0]
        by_shard[shard_id].append(
            RawRecord(
                kinesis["sequenceNumber"],
                kinesis["partitionKey"],
                base64.b64decode(kinesis["data"]),
                int(float(kinesis["approximateArrivalTimestamp"]) * 1000),
            )
        )
    return dict(by_shard)


def make_handler(
    build: Callable[[], Awaitable[KinesisBatchHandler]],
) -> Callable[[LambdaEvent, Any], LambdaResponse]:
    """A Lambda ``handler(event, context)`` that builds its ``KinesisBatchHandler`` on the first
    call (``build`` opens the clients) and runs every invocation on the same event loop."""
    loop: asyncio.AbstractEventLoop | None = None
    built: KinesisBatchHandler | None = None

    def handler(event: LambdaEvent, context: Any) -> LambdaResponse:
        nonlocal loop, built
        if loop is None:
            loop = asyncio.new_event_loop()
        if built is None:
            built = loop.run_until_complete(build())
        return loop.run_until_complete(built.handle(event))

    return handler
