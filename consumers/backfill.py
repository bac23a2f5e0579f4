"""Backfill: an event-time range of the lake fed through a processor as one synthetic shard.

The lake holds event columns only (Firehose layout): no shard, no sequence number. Replay gives
the range its own stream order, ``replay_order``: by timestamp, ties in the order the events were
read (a stable sort). Events of one user with equal timestamps may therefore be applied in another
order than the live stream applied them. Event ``i`` of that order becomes record ``i`` of shard
``REPLAY_SHARD`` (sequence number ``str(i)``), so positions are a pure function of the range.

With deterministic positions, the rows' per-shard high-water marks make re-applying an event a
no-op. That is what makes resuming safe: ``BackfillProgress`` remembers, per range and target
table, how many events were fully applied and a fingerprint of the range's content, and
``backfill`` continues from there; a batch interrupted half-way is simply applied again.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError

from consumers.processor import Batch
from feature_store.transforms import Sequenced
from infra.errors import translate
from producers.events import Event

REPLAY_SHARD = "replay"  # Kinesis shard ids are "shardId-<12 digits>": no clash with live marks
DEFAULT_BATCH_SIZE = 20_000  # each row is written at most once per batch: big batches, few writes


def replay_order(events: Sequence[Event]) -> list[Event]:
    """``events`` by timestamp; equal timestamps keep their order in ``events`` (stable)."""
    return sorted(events, key=lambda e: e.timestamp)


def sequenced(events: Sequence[Event], start: int, stop: int) -> list[Sequenced]:
    """Events ``start`` to ``stop`` of the replay order as records of ``REPLAY_SHARD``: the
    sequence number is the event's index (decimal), its arrival its event time."""
    return [
        Sequenced(events[i], REPLAY_SHARD, str(i), arrival_ms=events[i].timestamp)
        for i in range(start, min(stop, len(events)))
    ]


def fingerprint(events: Sequence[Event]) -> str:
    """A digest of the events' content in replay order: equal iff the range replays the same."""
    digest = hashlib.sha256()
    for event in events:
        digest.update(event.to_json())
        digest.update(b"\n")
    return digest.hexdigest()


@dataclass(frozen=True)
class Progress:
    """How far the backfill of one range into one table got."""

    events: int  # events in the range when the backfill started
    fingerprint: str
    applied: int  # events 0 .. applied-1 of the replay order took effect
    updated_ms: int = 0

    @property
    def complete(self) -> bool:
        """Every event of the range took effect."""
        return self.applied >= self.events


class BatchProcessor(Protocol):
    """What ``backfill`` drives: ``FeatureProcessor`` (a ``RecordProcessor``) is one."""

    async def process_records(self, batch: Batch) -> None:
        """Apply ``batch`` durably."""


class BackfillProgress:
    """Progress items in the checkpoints table (hash key ``pk``), one per range and target.

    The key ``<app>#replay#<table>#<start>-<end>`` cannot clash with a lease or checkpoint
    (``<app>#<shard id>``: shard ids hold no ``#``), and the item has no ``lease_counter``, so
    ``LeaseTable.scan`` never lists it.
    """

    def __init__(self, client: Any, table: str, app_name: str) -> None:
        self._client = client
        self._table = table
        self._app = app_name

    def _key(self, target: str, start_ms: int, end_ms: int) -> dict[str, Any]:
        return {"pk": {"S": f"{self._app}#replay#{target}#{start_ms}-{end_ms}"}}

    async def get(self, target: str, start_ms: int, end_ms: int) -> Progress | None:
        """The stored progress of replaying ``[start_ms, end_ms)`` into ``target``, or None."""
        try:
            response = await self._client.get_item(
                TableName=self._table, Key=self._key(target, start_ms, end_ms), ConsistentRead=True
            )
        except ClientError as exc:
            raise translate("GetItem", exc) from exc
        item = response.get("Item")
        if item is None:
            return None
        return Progress(
            events=int(item["events"]["N"]),
            fingerprint=item["fingerprint"]["S"],
            applied=int(item["applied"]["N"]),
            updated_ms=int(item["updated_ms"]["N"]),
        )

    async def put(self, target: str, start_ms: int, end_ms: int, progress: Progress) -> None:
        """Store ``progress`` (written only after its events' writes succeeded)."""
        item = {
            **self._key(target, start_ms, end_ms),
            "kind": {"S": "replay-into-features"},
            "target": {"S": target},
            "start_ms": {"N": str(start_ms)},
            "end_ms": {"N": str(end_ms)},
            "events": {"N": str(progress.events)},
            "fingerprint": {"S": progress.fingerprint},
            "applied": {"N": str(progress.applied)},
            "updated_ms": {"N": str(int(time.time() * 1000))},
        }
        try:
            await self._client.put_item(TableName=self._table, Item=item)
        except ClientError as exc:
            raise translate("PutItem", exc) from exc


async def backfill(
    events: Sequence[Event],
    processor: BatchProcessor,
    *,
    start: int,
    batch_size: int,
    done: Callable[[int], Awaitable[None]],
) -> int:
    """Apply ``events`` (in replay order) from index ``start`` on, ``batch_size`` at a time.

    After each batch has taken effect, ``done(applied)`` is awaited with the count of events
    applied so far (persist it there). Returns that count: ``len(events)``. An exception of the
    processor propagates; ``done`` was then called for every earlier batch.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    applied = start
    while applied < len(events):
        stop = min(applied + batch_size, len(events))
        await processor.process_records(Batch(REPLAY_SHARD, sequenced(events, applied, stop)))
        applied = stop
        await done(applied)
    return applied
