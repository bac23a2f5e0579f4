"""Per-shard rate limiting at Kinesis's write limits, so one hot key is paced, not throttled.

A shard takes 1,000 records and 1 MiB (data plus partition keys) per second. Each shard of the
map gets two token buckets holding one second's worth; a record goes into a call only when its
shard's buckets can pay for it, so a hot key waits in the buffer (where backpressure sees it)
instead of being sent, throttled and retried in a storm. Another producer writing to the same
shard is not seen: its share shows up as throttling, which the retry path absorbs.

Pure: the clock is a ``now`` argument. The map comes from the driver (ListShards); the limiter
says when it is due for a refresh: never loaded, older than ``refresh_interval``, or marked
stale because Kinesis answered with a shard id the map does not know (resharding).
"""

from __future__ import annotations

from producers.shards import ShardMap

SHARD_RECORDS_PER_S = 1000.0
SHARD_BYTES_PER_S = 1024.0 * 1024.0
PACING_QUANTUM = 0.1  # seconds of a shard's record rate worth waiting for once paced
_EPSILON = 1e-9  # float slack, so a take at the instant ``ready_at`` named always succeeds


class TokenBucket:
    """``rate`` tokens per second, at most ``capacity`` saved; starts full."""

    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, rate: float, capacity: float, now: float) -> None:
        self.rate, self.capacity = rate, capacity
        self.tokens, self.updated = capacity, now

    def refill(self, now: float) -> None:
        """Add what accrued since the last refill."""
        if now > self.updated:
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now

    def can_take(self, amount: float, now: float) -> bool:
        """True if ``amount`` tokens are there now (amounts over capacity need a full bucket)."""
        if now > self.updated:  # checked here too: this runs once per record sent
            self.refill(now)
        capacity = self.capacity
        return self.tokens + _EPSILON >= (amount if amount < capacity else capacity)

    def take(self, amount: float) -> None:
        """Spend ``amount`` (after ``can_take``); the balance may go below zero for big ones."""
        self.tokens -= amount

    def ready_at(self, amount: float, now: float) -> float:
        """The earliest time ``can_take(amount)`` holds."""
        self.refill(now)
        missing = min(amount, self.capacity) - self.tokens
        return now if missing <= 0 else now + missing / self.rate


class ShardRateLimiter:
    """Token buckets per shard of the current shard map, and when to refresh that map."""

    def __init__(
        self,
        records_per_s: float = SHARD_RECORDS_PER_S,
        bytes_per_s: float = SHARD_BYTES_PER_S,
        refresh_interval: float = 60.0,
    ) -> None:
        self._records_per_s, self._bytes_per_s = records_per_s, bytes_per_s
        self._refresh_interval = refresh_interval
        self._map: ShardMap | None = None
        self._buckets: dict[str, tuple[TokenBucket, TokenBucket]] = {}
        self._next_refresh = float("-inf")
        self._stale = False

    @property
    def shard_map(self) -> ShardMap | None:
        """The map in use; ``None`` until one was loaded (then nothing is limited)."""
        return self._map

    def shard_of(self, partition_key: str) -> str | None:
        """The shard ``partition_key`` goes to, per the current map (``None``: unknown)."""
        return self._map.shard_of(partition_key) if self._map is not None else None

    def try_take(self, shard: str, records: int, nbytes: int, now: float) -> bool:
        """Pay for ``records`` and ``nbytes`` on ``shard`` if both buckets allow it now."""
        return self.take_from(self.buckets(shard, now), records, nbytes)

    def buckets(self, shard: str, now: float) -> tuple[TokenBucket, TokenBucket]:
        """``shard``'s (records, bytes) buckets, refilled to ``now``: for ``take_from`` calls
        at that same instant."""
        count, size = self._buckets.get(shard) or self._buckets_of(shard, now)
        count.refill(now)
        size.refill(now)
        return count, size

    @staticmethod
    def take_from(buckets: tuple[TokenBucket, TokenBucket], records: int, nbytes: int) -> bool:
        """Pay ``records`` and ``nbytes`` from ``buckets`` (see ``buckets``) if both allow it."""
        count, size = buckets
        # can_take and take of both buckets, written out: this runs once per record sent
        if count.tokens + _EPSILON < min(records, count.capacity):
            return False
        if size.tokens + _EPSILON < min(nbytes, size.capacity):
            return False
        count.tokens -= records
        size.tokens -= nbytes
        return True

    def ready_at(self, shard: str, records: int, nbytes: int, now: float) -> float:
        """The earliest time ``try_take`` of this much on ``shard`` can succeed."""
        count, size = self._buckets_of(shard, now)
        return max(count.ready_at(records, now), size.ready_at(nbytes, now))

    def resume_at(self, shard: str, records: int, nbytes: int, now: float) -> float:
        """When sending to a paced ``shard`` is worth it again: it can pay what it refused,
        and a tenth of a second of records, so a hot shard gets few full calls, not a call per
        token."""
        quantum = max(records, int(self._records_per_s * PACING_QUANTUM))
        return self.ready_at(shard, quantum, nbytes, now)

    def _buckets_of(self, shard: str, now: float) -> tuple[TokenBucket, TokenBucket]:
        buckets = self._buckets.get(shard)
        if buckets is None:
            buckets = (
                TokenBucket(self._records_per_s, self._records_per_s, now),
                TokenBucket(self._bytes_per_s, self._bytes_per_s, now),
            )
            self._buckets[shard] = buckets
        return buckets

    def refresh_due(self, now: float) -> bool:
        """True when the driver should load the shard map (ListShards) now."""
        return self._stale or now >= self._next_refresh

    def update(self, shard_map: ShardMap, now: float) -> None:
        """Use a freshly loaded map. Buckets of shards still open keep their balance."""
        self._map = shard_map
        self._buckets = {s: b for s, b in self._buckets.items() if s in shard_map}
        self._next_refresh = now + self._refresh_interval
        self._stale = False

    def refresh_failed(self, now: float) -> None:
        """ListShards failed: keep the old map (or none) and try again after the interval."""
        self._next_refresh = now + self._refresh_interval
        self._stale = False

    def saw_shard(self, shard_id: str) -> None:
        """Kinesis wrote to ``shard_id``; a shard the map lacks means the stream was resharded."""
        if self._map is not None and shard_id and shard_id not in self._map:
            self._stale = True
