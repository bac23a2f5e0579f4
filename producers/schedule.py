"""Per-key order: each partition key's unresolved records, and which keys may send next.

A key's records form a FIFO. Only the front of a key (with aggregation, a run at the front) is
ever in a call; the rest are held back until it is resolved. Keys whose front can be sent are
ready, grouped by shard (as the shard map says; one group without a map), each group a heap by
put order; ``ready_keys`` merges the groups oldest first and skips a paced shard's whole group
at once, so a hot shard costs nothing to pass over. Keys whose front failed with a retryable
code wait in a heap until their retry is due, then are ready again, ahead of younger keys.
Pure data structure: the core decides, this keeps the books.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Container, Iterable, Iterator

from producers.batching import IN_FLIGHT, QUEUED, WAITING, Pending

ShardOf = Callable[[str], str | None]


class KeySchedule:
    """The FIFOs of every key with unresolved records, the ready groups and the waiting heap."""

    def __init__(self, shard_of: ShardOf | None = None) -> None:
        self._shard_of: ShardOf = shard_of or (lambda _key: None)
        self._queues: dict[str, deque[Pending]] = {}
        # shard -> heap of the front seqs of its ready keys, and each such seq's key: plain int
        # heaps, as an int compares several times faster than a (seq, key) tuple
        self._ready: dict[str | None, list[int]] = {}
        self._ready_key: dict[int, str] = {}
        self._waiting: list[tuple[float, int, str]] = []  # (due, front seq, key)
        self.ready_count = 0  # ready keys
        self.ready_bytes = 0  # bytes of the ready fronts
        self.ready_retries = 0  # ready fronts that were sent before

    def append(self, pending: Pending) -> None:
        """Queue a new record behind its key's earlier ones (a new key is ready at once)."""
        key = pending.partition_key
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
            self._push_ready(key, pending)
        queue.append(pending)

    def extend(self, pendings: Iterable[Pending]) -> None:
        """``append`` each record in order (the bulk path: one call for a chunk)."""
        queues = self._queues
        for pending in pendings:
            key = pending.partition_key
            queue = queues.get(key)
            if queue is None:
                queues[key] = deque((pending,))
                self._push_ready(key, pending)
            else:
                queue.append(pending)

    def regroup(self, shard_of: ShardOf) -> None:
        """Sort the ready keys into shard groups again, by a new shard map's ``shard_of``."""
        self._shard_of = shard_of
        seqs = [seq for heap in self._ready.values() for seq in heap]
        self._ready = {}
        for seq in seqs:
            heapq.heappush(self._ready.setdefault(self._shard_of(self._ready_key[seq]), []), seq)

    def oldest_ready(self) -> Pending | None:
        """The front of the ready key put first."""
        tops = [heap[0] for heap in self._ready.values() if heap]
        return self._queues[self._ready_key[min(tops)]][0] if tops else None

    def next_due(self) -> float | None:
        """When the first waiting key's retry is due."""
        return self._waiting[0][0] if self._waiting else None

    def promote(self, now: float) -> None:
        """Keys whose retry is due become ready again."""
        while self._waiting and self._waiting[0][0] <= now:
            _, _, key = heapq.heappop(self._waiting)
            queue = self._queues[key]
            for pending in queue:
                if pending.state != WAITING:
                    break
                pending.state = QUEUED
            self._push_ready(key, queue[0])

    def ready_keys(
        self, paced: Container[str | None]
    ) -> Iterator[tuple[str, str | None, deque[Pending]]]:
        """Pop ready ``(key, shard, queue)`` oldest first across shards, passing over the
        groups of shards in ``paced`` (checked as it goes). The caller ``send``s or ``skip``s
        each."""
        tops = [(heap[0], shard) for shard, heap in self._ready.items() if heap]
        heapq.heapify(tops)
        while tops:
            shard = tops[0][1]
            if shard in paced:
                heapq.heappop(tops)
                continue
            heap = self._ready[shard]
            key = self._ready_key.pop(heapq.heappop(heap))
            self.ready_count -= 1
            yield key, shard, self._queues[key]
            if heap:  # tops[0] is still this shard's: only this generator changes ``tops``
                heapq.heapreplace(tops, (heap[0], shard))
            else:
                heapq.heappop(tops)

    def queue(self, key: str) -> deque[Pending]:
        """The unresolved records of ``key``, oldest first."""
        return self._queues[key]

    def skip(self, keys: Iterable[str]) -> None:
        """Keys popped by ``ready_keys`` and not sent: ready again, in their place."""
        for key in keys:
            seq = self._queues[key][0].seq
            heapq.heappush(self._ready.setdefault(self._shard_of(key), []), seq)
            self._ready_key[seq] = key
            self.ready_count += 1

    def send(self, queue: deque[Pending], count: int) -> None:
        """The first ``count`` records of a popped key's ``queue`` are now in flight."""
        self.ready_bytes -= queue[0].size
        self.ready_retries -= queue[0].attempts > 0
        for index in range(count):
            pending = queue[index]
            pending.state, pending.attempts = IN_FLIGHT, pending.attempts + 1

    def remove(self, pending: Pending) -> None:
        """Forget a resolved record (it is at or near the front of its key)."""
        queue = self._queues[pending.partition_key]
        if queue[0] is pending:
            queue.popleft()
        else:
            queue.remove(pending)

    def remove_many(self, pendings: Iterable[Pending]) -> None:
        """``remove`` each of ``pendings`` (resolved by one call)."""
        queues = self._queues
        for pending in pendings:
            queue = queues[pending.partition_key]
            if queue[0] is pending:
                queue.popleft()
            else:
                queue.remove(pending)

    def settle(self, keys: Iterable[str], now: float, delay: Callable[[int], float]) -> None:
        """After a call: each of its keys becomes ready, waits ``delay(attempts)`` for its
        retry, or is dropped when it has nothing left."""
        for key in keys:
            queue = self._queues.get(key)
            if queue is None:  # abandoned meanwhile
                continue
            if not queue:
                del self._queues[key]
            elif queue[0].state == WAITING:
                due = now + delay(queue[0].attempts)
                heapq.heappush(self._waiting, (due, queue[0].seq, key))
            elif queue[0].state == QUEUED:
                self._push_ready(key, queue[0])

    def drain(self) -> list[Pending]:
        """Every record held, removed from the schedule (for abandoning them)."""
        held = [pending for queue in self._queues.values() for pending in queue]
        self._queues.clear()
        self._ready.clear()
        self._ready_key.clear()
        self._waiting.clear()
        self.ready_count = self.ready_bytes = self.ready_retries = 0
        return held

    def _push_ready(self, key: str, front: Pending) -> None:
        heapq.heappush(self._ready.setdefault(self._shard_of(key), []), front.seq)
        self._ready_key[front.seq] = key
        self.ready_count += 1
        self.ready_bytes += front.size
        self.ready_retries += front.attempts > 0
