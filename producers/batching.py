"""Filling one PutRecords call: Kinesis's limits, per-shard pacing and optional aggregation.

Pure: no I/O, no clock of its own. The core offers the ready partition keys oldest first; the
packer takes records while the call stays within ``max_batch_records`` entries and
``max_batch_bytes`` bytes (every record is at most 1 MiB with its key, so one always fits an
empty call), and while the record's shard can pay for it. A key is in at most one entry of a
call: without aggregation that entry is the key's oldest record; with it, a run of the key's
oldest records inside one aggregated record, which Kinesis writes or refuses as a whole. Either
way two records of one key never race in one call, which is what keeps a key's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from producers.aggregation import Aggregate
from producers.config import ProducerConfig
from producers.ratelimit import ShardRateLimiter
from producers.records import Record

QUEUED, IN_FLIGHT, WAITING, RESOLVED = 0, 1, 2, 3


@dataclass(slots=True, eq=False)
class Pending:
    """A record the producer holds until its outcome is known. ``token`` is the driver's
    (a future, or ``None`` when nobody asked for one); ``attempts`` counts the calls that
    carried it.

    It holds the record's fields rather than the ``Record``: one object per held event instead
    of two. Held events live long enough to reach CPython's oldest GC generation, and each
    object there makes every full collection longer and the next one come sooner.
    """

    event_id: str
    partition_key: str
    data: bytes
    size: int  # data plus partition key, as ``Record.size``
    seq: int
    added_at: float
    token: Any = None
    attempts: int = 0
    state: int = QUEUED

    # Without aggregation a record is its own entry of a call (``Entry``'s interface), so a
    # plain call makes no object per event beyond the ``Pending`` it already holds.
    aggregated: ClassVar[bool] = False

    @property
    def items(self) -> tuple[Pending]:
        """As an entry of a plain call: the one record it carries, itself."""
        return (self,)

    @property
    def record(self) -> Record:
        """The record held (a new ``Record`` of the same fields)."""
        return Record(self.event_id, self.partition_key, self.data)


@dataclass(slots=True, eq=False)
class Entry:
    """One Kinesis record of a call: one event, or several as a KPL-aggregated record.
    ``size`` is its bytes against the call's limit (data plus partition key), once sealed."""

    items: list[Pending]
    shard: str | None
    aggregate: Aggregate | None = None
    partition_key: str = ""
    data: bytes = b""
    size: int = 0

    @property
    def aggregated(self) -> bool:
        """True when the entry goes out as an aggregated record (more than one event)."""
        return self.aggregate is not None and len(self.items) > 1

    def seal(self) -> None:
        """Fix the bytes to send: a lone event goes out plain, as the KPL does."""
        if self.aggregated:
            assert self.aggregate is not None
            self.partition_key, self.data = self.aggregate.partition_key, self.aggregate.to_bytes()
            self.size = len(self.data) + len(self.partition_key.encode())
        else:
            first = self.items[0]
            self.partition_key, self.data, self.size = first.partition_key, first.data, first.size


@dataclass(slots=True, eq=False)
class Batch:
    """One PutRecords call's entries, in the order sent: ``Pending`` records when ``plain``
    (no aggregation), else ``Entry`` objects."""

    entries: list[Any]  # list[Pending] when plain, else list[Entry]
    nbytes: int = 0
    records: int = 0
    plain: bool = False

    def request(self, stream_name: str) -> dict[str, Any]:
        """The ``put_records`` keyword arguments."""
        return {
            "StreamName": stream_name,
            "Records": [{"Data": e.data, "PartitionKey": e.partition_key} for e in self.entries],
        }


class CallPacker:
    """Fills one call from the keys the core offers; ``full`` says when to stop offering."""

    def __init__(
        self, config: ProducerConfig, limiter: ShardRateLimiter | None, now: float
    ) -> None:
        self._config, self._limiter, self._now = config, limiter, now
        self._max_records, self._max_bytes = config.max_batch_records, config.max_batch_bytes
        self.entries: list[Entry] = []
        self.nbytes = 0
        self.full = False
        self.paced: dict[str, tuple[int, int]] = {}  # shard -> (records, bytes) it could not pay
        self._buckets: dict[str, Any] = {}  # shard -> its (records, bytes) buckets, refilled
        self._open: dict[str, Entry] = {}  # aggregating: the open entry of each shard group

    def offer(self, queue: Sequence[Pending], shard: str | None) -> int:
        """Take records from the front of one key's ``queue`` (all of them ``QUEUED``);
        returns how many were taken, 0 if none could be (the caller keeps the key ready)."""
        if shard is not None and shard in self.paced:
            return 0
        if self._config.aggregate:
            return self._offer_aggregated(queue, shard)
        # the plain path, once per event sent: _fits and _add_entry written out
        first = queue[0]
        size, entries = first.size, self.entries
        if entries and (len(entries) >= self._max_records or self.nbytes + size > self._max_bytes):
            self.full = True
            return 0
        if not self._pay(shard, 1, size):
            return 0
        entries.append(first)  # its own entry: see ``Pending.items``
        self.nbytes += size
        if len(entries) >= self._max_records:
            self.full = True
        return 1

    def finish(self) -> Batch | None:
        """The call, its entries sealed; ``None`` when nothing was taken."""
        if not self.entries:
            return None
        if not self._config.aggregate:  # plain entries are the records themselves
            return Batch(self.entries, self.nbytes, len(self.entries), plain=True)
        for entry in self.entries:
            entry.seal()
        nbytes = sum(e.size for e in self.entries)
        return Batch(self.entries, nbytes, sum(len(e.items) for e in self.entries))

    def _fits(self, size: int) -> bool:
        """Room for ``size`` more bytes in one more entry; an empty call takes anything."""
        limit = self._config.max_batch_records
        if self.entries and (len(self.entries) >= limit or self.nbytes + size > self._max()):
            self.full = True
            return False
        return True

    def _max(self) -> int:
        return self._max_bytes

    def _pay(self, shard: str | None, records: int, nbytes: int) -> bool:
        """``ShardRateLimiter.try_take``, with each shard's buckets fetched and refilled once
        a call: this runs once per record sent."""
        if shard is None or self._limiter is None:
            return True
        buckets = self._buckets.get(shard)
        if buckets is None:
            buckets = self._buckets[shard] = self._limiter.buckets(shard, self._now)
        if self._limiter.take_from(buckets, records, nbytes):
            return True
        self.paced.setdefault(shard, (records, nbytes))
        return False

    def _add_entry(self, entry: Entry, size: int) -> None:
        self.entries.append(entry)
        self.nbytes += size
        if len(self.entries) >= self._config.max_batch_records:
            self.full = True

    def _offer_aggregated(self, queue: Sequence[Pending], shard: str | None) -> int:
        group = shard if shard is not None else queue[0].partition_key
        entry = self._open.get(group)
        taken = 0
        for pending in queue:
            if entry is None or entry.aggregate is None or not self._room(entry, pending):
                if taken:  # a key's records never span two entries of one call
                    break
                entry = self._open_entry(group, shard, pending)
                if entry is None:
                    break
            elif not self._fits_grow(entry, pending) or not self._pay(shard, 0, pending.size):
                break
            self._grow(entry, pending)
            taken += 1
        return taken

    def _room(self, entry: Entry, pending: Pending) -> bool:
        assert entry.aggregate is not None
        cost = entry.aggregate.cost(pending.partition_key, pending.data)
        return entry.aggregate.size + cost <= self._config.aggregate_max_bytes

    def _fits_grow(self, entry: Entry, pending: Pending) -> bool:
        assert entry.aggregate is not None
        if self.nbytes + entry.aggregate.cost(pending.partition_key, pending.data) > self._max():
            self.full = True
            return False
        return True

    def _open_entry(self, group: str, shard: str | None, pending: Pending) -> Entry | None:
        aggregate = Aggregate()
        start = aggregate.size + aggregate.cost(pending.partition_key, pending.data)
        if not self._fits(start) or not self._pay(shard, 1, pending.size):
            return None
        entry = Entry([], shard, aggregate)
        self._add_entry(entry, aggregate.size)
        self._open[group] = entry
        return entry

    def _grow(self, entry: Entry, pending: Pending) -> None:
        assert entry.aggregate is not None
        before = entry.aggregate.size
        entry.aggregate.add(pending.partition_key, pending.data)
        self.nbytes += entry.aggregate.size - before
        entry.items.append(pending)
