"""The pure core of ``EventProducer`` and ``AsyncEventProducer``: what to send, when, and what
each answer means. No I/O, no threads, no asyncio, no clock: every method takes ``now``.

Order: ``KeySchedule`` holds each key's records back behind its front, so a later event of a
key is never sent while an earlier one is in flight or waiting for its retry. Timing: a call
goes out when it would be full, when its oldest record has lingered ``linger`` seconds, when a
retry is due, when a flush asks, or when the buffer is half full; ``CallPacker`` fills it within
Kinesis's limits and each shard's rate. Answers: only entries with an ``ErrorCode`` are sent
again, after a backoff with full jitter, while the code is retryable and attempts remain; a call
that raised counts for all its records. Nothing is dropped: every record ends once, delivered
(shard, sequence number) or failed (error code of its last attempt), through an ``Outcome``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

from producers.batching import RESOLVED, WAITING, Batch, CallPacker, Entry, Pending
from producers.config import ProducerConfig
from producers.errors import RETRYABLE_CODES, CallFailure, RecordTooLarge
from producers.metrics import THROTTLED, MetricsRecorder, ProducerMetrics
from producers.outcomes import Ledger, Outcome
from producers.ratelimit import ShardRateLimiter
from producers.records import (
    HELD_OVERHEAD_BYTES,
    MAX_RECORD_BYTES,
    DeliveryFields,
    Encoded,
    FailedEvent,
    ProduceResult,
    Record,
)
from producers.schedule import KeySchedule
from producers.shards import ShardMap


def backoff_delay(attempt: int, rand: Callable[[], float], base: float, cap: float) -> float:
    """Seconds before retry ``attempt`` (1, 2, ...): ``rand() * min(cap, base * 2**(n-1))``."""
    return rand() * min(cap, base * 2 ** (attempt - 1))


class ProducerCore:
    """Batching and retry decisions for one stream. Not thread-safe: the driver locks."""

    def __init__(
        self,
        config: ProducerConfig,
        rand: Callable[[], float],
        limiter: ShardRateLimiter | None = None,
    ) -> None:
        self.config, self._rand, self._limiter = config, rand, limiter
        self._schedule = KeySchedule(limiter.shard_of if limiter is not None else None)
        self._seq = self._flush_target = 0
        self._paced_until: float | None = None
        self._metrics = MetricsRecorder()
        self._ledger = Ledger(self._metrics)

    @classmethod
    def for_config(cls, config: ProducerConfig, rand: Callable[[], float]) -> ProducerCore:
        """The core for ``config``, with a shard rate limiter when pacing is on."""
        limiter = None
        if config.rate_limit:
            rates = (config.shard_records_per_s, config.shard_bytes_per_s)
            limiter = ShardRateLimiter(*rates, refresh_interval=config.shard_map_ttl)
        return cls(config, rand, limiter)

    def has_room(self, size: int) -> bool:
        """True if a record of ``size`` bytes fits the buffer now."""
        cfg = self.config
        ledger = self._ledger
        held = ledger.bytes + size + HELD_OVERHEAD_BYTES
        return ledger.events < cfg.buffer_events and held <= cfg.buffer_bytes

    def add(self, record: Record, now: float, token: Any = None) -> int:
        """Buffer ``record`` (the caller checked ``has_room``); returns its put order number."""
        return self.add_encoded(record.fields, now, token)

    def add_encoded(self, fields: Encoded, now: float, token: Any = None) -> int:
        """``add`` for a record's fields (``records.encode``): no ``Record`` is made."""
        if fields[3] > MAX_RECORD_BYTES:
            raise RecordTooLarge(f"{fields[0]}: {fields[3]} bytes, at most 1 MiB")
        self._seq = seq = self._seq + 1
        pending = Pending(*fields, seq, now, token)
        self._schedule.append(pending)
        self._ledger.hold(pending)
        return seq

    def add_many(
        self,
        records: Sequence[Encoded],
        start: int,
        now: float,
        make_token: Callable[[], Any] | None = None,
        tokens: list[Any] | None = None,
    ) -> int:
        """Buffer ``records[start:]`` in order while the buffer has room; returns the index of
        the first record that did not fit (``len(records)`` when all did). With ``make_token``
        each buffered record gets ``make_token()``, appended to ``tokens`` in order.

        ``add_encoded`` for a chunk, the bulk path of ``EventProducer.put_many``: the room
        check, put numbers and bookkeeping run in one loop here, not in five calls per record.
        """
        cfg, ledger = self.config, self._ledger
        room_events = cfg.buffer_events - ledger.events
        room_bytes = cfg.buffer_bytes - ledger.bytes - HELD_OVERHEAD_BYTES
        seq, held, too_large = self._seq, [], None
        for index in range(start, len(records)):
            fields = records[index]
            size = fields[3]
            if room_events <= 0 or size > room_bytes:
                break
            if size > MAX_RECORD_BYTES:
                too_large = RecordTooLarge(f"{fields[0]}: {size} bytes, at most 1 MiB")
                break
            room_events -= 1
            room_bytes -= size + HELD_OVERHEAD_BYTES
            seq += 1
            token = None
            if make_token is not None:
                token = make_token()
                tokens.append(token)  # type: ignore[union-attr]
            held.append(Pending(*fields, seq, now, token))
        self._seq = seq
        self._schedule.extend(held)
        ledger.hold_many(held)
        if too_large is not None:
            raise too_large
        return start + len(held)

    def retry_after(self, now: float) -> float:
        """A guess of how long until the buffer has room: the next send plus one call."""
        wake = self.next_wakeup(now)
        latency = self._metrics.call_latency_sum / max(self._metrics.calls, 1)
        return max(0.001, (wake - now if wake is not None and wake > now else 0.0) + latency)

    def flush_through(self) -> int:
        """Send everything put so far without lingering; returns the last put order number."""
        self._flush_target = self._seq
        return self._seq

    def resolved_through(self, seq: int) -> bool:
        """True once every record put up to ``seq`` is delivered or failed."""
        return self._ledger.resolved_through(seq)

    @property
    def idle(self) -> bool:
        """True when nothing is buffered, in flight or waiting."""
        return self._ledger.events == 0

    def next_batch(self, now: float) -> Batch | None:
        """The call to make now, or ``None`` (then ask ``next_wakeup``). Its records are in
        flight until ``on_response`` or ``on_call_error`` is given the call's outcome."""
        self._schedule.promote(now)
        if not self._due(now):
            return None
        packer, skipped = CallPacker(self.config, self._limiter, now), []
        for key, shard, queue in self._schedule.ready_keys(packer.paced):
            taken = packer.offer(queue, shard)
            if taken:
                self._schedule.send(queue, taken)
            else:
                skipped.append(key)
            if packer.full:
                break
        self._schedule.skip(skipped)
        self._note_pacing(packer, now)
        return packer.finish()

    def next_wakeup(self, now: float) -> float | None:
        """When ``next_batch`` may next have a call without new input; ``None``: not before a
        put or flush."""
        due = self._schedule.next_due()
        times = [due] if due is not None else []
        oldest = self._schedule.oldest_ready()
        if oldest is not None:
            if self._due(now):
                paced = self._paced_until
                times.append(paced if paced is not None and paced > now else now)
            elif self.config.linger is not None:
                times.append(oldest.added_at + self.config.linger)
        return min(times) if times else None

    def due(self, now: float) -> bool:
        """True when a call should go out now (the driver's sender may be asleep)."""
        return self._due(now)

    def _due(self, now: float) -> bool:
        cfg, schedule = self.config, self._schedule
        oldest = schedule.oldest_ready()
        if oldest is None:
            return False
        return (
            schedule.ready_retries > 0
            or oldest.seq <= self._flush_target
            or schedule.ready_count >= cfg.max_batch_records
            or schedule.ready_bytes >= cfg.max_batch_bytes
            or 2 * self._ledger.events >= cfg.buffer_events
            or 2 * self._ledger.bytes >= cfg.buffer_bytes
            or (cfg.linger is not None and now >= oldest.added_at + cfg.linger)
        )

    def _note_pacing(self, packer: CallPacker, now: float) -> None:
        self._paced_until = None
        if packer.paced and self._limiter is not None:
            self._metrics.paced += len(packer.paced)
            self._paced_until = min(
                self._limiter.resume_at(shard, records, nbytes, now)
                for shard, (records, nbytes) in packer.paced.items()
            )

    def on_response(
        self, batch: Batch, response: dict[str, Any], now: float, started: float
    ) -> Outcome:
        """Apply a PutRecords answer, entry by entry (``FailedRecordCount`` is not trusted)."""
        answers = response.get("Records") or []
        if len(answers) != len(batch.entries):
            message = f"{len(answers)} answers for {len(batch.entries)} records"
            failure = CallFailure("InvalidResponse", message, retryable=True, maybe_written=True)
            return self.on_call_error(batch, failure, now, started)
        self._metrics.call(len(batch.entries), batch.nbytes, now - started)
        outcome = Outcome()
        if batch.plain:
            shards = self._apply_plain(batch.entries, answers, now, outcome)
        else:
            shards = set()
            for entry, answer in zip(batch.entries, answers, strict=True):
                code = answer.get("ErrorCode")
                if code:
                    self._answer_error(entry.items, code, answer, now, outcome)
                else:
                    shards.add(self._deliver(entry, entry.aggregated, answer, now, outcome))
        if self._limiter is not None:
            for shard in shards:
                self._limiter.saw_shard(shard)
        self._settle(batch, now)
        return outcome

    def _apply_plain(
        self, pendings: list[Pending], answers: list[dict[str, Any]], now: float, outcome: Outcome
    ) -> set[str]:
        """``on_response`` for a plain call (each entry one record); returns the shards written.
        Runs once per event sent, so the delivered are resolved in bulk, and a delivery's fields
        are handed over only for a record with a token (a future)."""
        shards: set[str] = set()
        delivered: list[Pending] = []
        resolved = outcome.resolved  # in the order sent, failures interleaved
        for pending, answer in zip(pendings, answers, strict=True):
            code = answer.get("ErrorCode")
            if code:
                self._answer_error((pending,), code, answer, now, outcome)
                continue
            if pending.state == RESOLVED:  # abandoned while in flight
                continue
            shard = str(answer.get("ShardId", ""))
            shards.add(shard)
            if pending.token is not None:
                sequence = str(answer.get("SequenceNumber", ""))
                resolved.append(
                    (pending.token, (pending.event_id, shard, sequence, None, pending.attempts))
                )
            pending.state = RESOLVED
            delivered.append(pending)
        self._schedule.remove_many(delivered)
        self._ledger.delivered_many(delivered, now)
        return shards

    def _answer_error(
        self,
        items: Iterable[Pending],
        code: str,
        answer: dict[str, Any],
        now: float,
        outcome: Outcome,
    ) -> None:
        """An entry Kinesis answered with ``code``: retry its records or fail them."""
        self._metrics.throttled += code == THROTTLED
        message = answer.get("ErrorMessage", "")
        self._retry_or_fail(items, code, message, code in RETRYABLE_CODES, now, outcome)

    def on_call_error(
        self, batch: Batch, failure: CallFailure, now: float, started: float
    ) -> Outcome:
        """Apply a PutRecords call that raised: every record is retried or failed with it."""
        self._metrics.call(len(batch.entries), batch.nbytes, now - started)
        self._metrics.call_errors[failure.code] += 1
        self._metrics.maybe_duplicated += batch.records if failure.maybe_written else 0
        outcome = Outcome()
        code, message, retryable = failure.code, failure.message, failure.retryable
        for entry in batch.entries:
            self._retry_or_fail(entry.items, code, message, retryable, now, outcome)
        self._settle(batch, now)
        return outcome

    def abandon(self, code: str, message: str, now: float) -> Outcome:
        """Fail every record still held (queued, in flight or waiting) with ``code``."""
        outcome = Outcome()
        for pending in self._schedule.drain():
            failure = FailedEvent(pending.event_id, code, message, pending.attempts)
            pending.state = RESOLVED
            self._ledger.failed(pending, failure, now, outcome)
        return outcome

    def _deliver(
        self, entry: Entry, aggregated: bool, answer: dict[str, Any], now: float, outcome: Outcome
    ) -> str:
        """Resolve an entry Kinesis wrote; returns its shard. Runs once per entry sent, so it
        is written out, and hands over a delivery's fields only for a record with a token."""
        shard, sequence = str(answer.get("ShardId", "")), str(answer.get("SequenceNumber", ""))
        schedule, ledger = self._schedule, self._ledger
        for index, pending in enumerate(entry.items):
            if pending.state == RESOLVED:  # abandoned while in flight
                continue
            delivery: DeliveryFields | None = None
            if pending.token is not None:
                sub = index if aggregated else None
                delivery = (pending.event_id, shard, sequence, sub, pending.attempts)
            schedule.remove(pending)
            pending.state = RESOLVED
            ledger.delivered(pending, delivery, now, outcome)
        return shard

    def _retry_or_fail(
        self,
        items: Iterable[Pending],
        code: str,
        message: str,
        retryable: bool,
        now: float,
        outcome: Outcome,
    ) -> None:
        for pending in items:
            if pending.state == RESOLVED:  # abandoned while in flight
                continue
            if retryable and pending.attempts < self.config.max_attempts:
                pending.state = WAITING
                self._metrics.retried += 1
            else:
                failure = FailedEvent(pending.event_id, code, message, pending.attempts)
                self._schedule.remove(pending)
                pending.state = RESOLVED
                self._ledger.failed(pending, failure, now, outcome)

    def _settle(self, batch: Batch, now: float) -> None:
        if batch.plain:  # the entries are the records: one a key
            keys: Iterable[str] = [pending.partition_key for pending in batch.entries]
        elif batch.records == len(batch.entries):  # one event an entry: one entry a key
            keys = [e.items[0].partition_key for e in batch.entries]
        else:
            keys = dict.fromkeys(p.partition_key for e in batch.entries for p in e.items)
        self._schedule.settle(keys, now, self._backoff)

    def _backoff(self, attempts: int) -> float:
        cfg = self.config
        return backoff_delay(attempts, self._rand, cfg.base_delay, cfg.max_delay)

    def shard_map_due(self, now: float) -> bool:
        """True when the driver should load the shard map now (pacing on, map old or stale)."""
        return self._limiter is not None and self._limiter.refresh_due(now)

    def update_shard_map(self, shard_map: ShardMap | None, now: float) -> None:
        """Use a freshly loaded map; ``None``: loading failed, keep the old one for now."""
        if self._limiter is None:
            return
        if shard_map is None:
            self._limiter.refresh_failed(now)
        else:
            self._limiter.update(shard_map, now)
            self._schedule.regroup(shard_map.shard_of)

    def take_result(self) -> ProduceResult:
        """The outcomes since the previous call: count sent, every failure in put order."""
        return self._ledger.take_result()

    def metrics(self) -> ProducerMetrics:
        """A snapshot of the counters."""
        return self._metrics.snapshot(self._ledger.events, self._ledger.bytes)
