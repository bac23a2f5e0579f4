"""``EventProducer``: the thread-safe, synchronous producer SDK for one Kinesis stream.

``put`` validates and buffers an event and returns a ``DeliveryFuture`` (``producers.futures``:
``result``, ``exception``, ``done``, ``add_done_callback``, ``as_future``) of its ``Delivery``
(shard id, sequence number), or raising ``DeliveryFailed`` naming the event and error code.
``put_many(events, results=False)`` is the bulk path: no futures, outcomes only through the
next ``ProduceResult``. A background sender thread makes the PutRecords calls that
``ProducerCore`` (the pure core shared with ``AsyncEventProducer``) decides on: batching,
linger, retries of exactly the failed entries with backoff and full jitter, per-key order,
per-shard pacing, aggregation. ``flush``/``close`` wait for every event put before them and
return a ``ProduceResult`` naming each event that failed. Delivery is at least once per
event_id (a call that timed out may have written its records before they are resent);
consumers dedupe by high-water marks or event_id.

Cost per event (bench/producer.py; it was about 40 µs): the JSON comes straight from
pydantic-core's serializer; events are held as the core's ``Pending`` only (``encode_many``
gives plain tuples, no ``Record`` objects; a plain call's entries are the ``Pending``s
themselves), added a chunk of ``max_batch_records`` per lock round-trip and per core call;
futures are ``DeliveryFuture``s, not ``concurrent.futures.Future``s (no Condition each,
resolved a call at a time under one lock, from a tuple of the delivery's fields). After a
chunk that made a call due the putter yields the GIL, so a burst does not fill the buffer
before the sender runs. Fewer long-lived objects per event matter as much as fewer
instructions: CPython's full GC passes come sooner and scan everything live.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, Literal, overload

from producers.clock import Clock, SystemClock
from producers.config import ProducerConfig
from producers.core import ProducerCore
from producers.errors import Backpressure, ProduceError, ProducerClosed, classify
from producers.events import Event
from producers.futures import DeliveryFuture, resolve
from producers.metrics import ProducerMetrics
from producers.outcomes import Outcome
from producers.records import Delivery, Encoded, FailedEvent, ProduceResult, Record, encode_many
from producers.shards import load_shard_map

__all__ = [
    "Delivery",
    "DeliveryFuture",
    "EventProducer",
    "FailedEvent",
    "ProduceError",
    "ProduceResult",
    "ProducerConfig",
    "ProducerMetrics",
    "Record",
]

log = logging.getLogger(__name__)
_DEFAULT: Any = object()  # "the configured put_timeout"


class EventProducer:
    """A thread-safe producer for one stream (see the module docstring).

    ``client`` is a boto3 Kinesis client (``put_records``; ``list_shards`` for pacing). Options
    are ``ProducerConfig``'s, as a ``config`` and/or keywords. ``clock`` and ``rand`` are
    injected so tests neither wait nor depend on chance. Use ``with`` or call ``close``: the
    sender is a daemon thread, and events still buffered at exit are lost.
    """

    def __init__(
        self,
        client: Any,
        stream_name: str,
        config: ProducerConfig | None = None,
        *,
        clock: Clock | None = None,
        rand: Callable[[], float] = random.random,
        **options: Any,
    ) -> None:
        self.config = ProducerConfig.of(config, options)
        self._client, self._stream = client, stream_name
        self._clock = clock or SystemClock()
        self._core = ProducerCore.for_config(self.config, rand)
        lock = threading.Lock()
        self._work = threading.Condition(lock)  # the sender waits here for something to do
        self._progress = threading.Condition(lock)  # putters and flushers wait for outcomes
        self._sender: threading.Thread | None = None
        self._sender_idle = False  # waiting for work with no timer armed
        self._unyielded = 0  # events put since the putters last yielded the GIL to the sender
        self._closing = self._closed = False
        self._stopped: BaseException | None = None

    def put(self, event: Event, *, timeout: float | None = _DEFAULT) -> DeliveryFuture:
        """Buffer one event; its future resolves to a ``Delivery`` or raises ``DeliveryFailed``.

        Raises ``InvalidEvent`` for an event breaking the contract, ``ProducerClosed`` after
        ``close``, and ``Backpressure`` when the buffer stays full (see ``ProducerConfig``;
        ``timeout`` overrides ``put_timeout``).
        """
        return self.put_many([event], timeout=timeout)[0]

    @overload
    def put_many(
        self,
        events: Iterable[Event],
        *,
        timeout: float | None = _DEFAULT,
        results: Literal[True] = True,
    ) -> list[DeliveryFuture]: ...

    @overload
    def put_many(
        self, events: Iterable[Event], *, timeout: float | None = _DEFAULT, results: Literal[False]
    ) -> None: ...

    def put_many(
        self, events: Iterable[Event], *, timeout: float | None = _DEFAULT, results: bool = True
    ) -> list[DeliveryFuture] | None:
        """``put`` each event in order; one future per event. On ``Backpressure`` the events
        before the one that did not fit are buffered (``accepted`` counts them).

        ``results=False`` is the bulk path: no futures (``None`` is returned), outcomes are
        reported only by the ``ProduceResult`` of the next ``flush``/``close``.
        """
        encoded = encode_many(events)  # all validated before any is buffered
        futures: list[DeliveryFuture] | None = [] if results else None
        chunk = self.config.max_batch_records
        for start in range(0, len(encoded), chunk):
            with self._work:  # a chunk at a time, so the sender applies answers in between
                yield_now = self._add(encoded[start : start + chunk], timeout, futures, start)
            if yield_now:
                # a call is due: let the sender take the lock and the GIL now. Both threads
                # run Python under one lock, and a putter re-taking it at once would starve
                # the sender until the buffer is full; this way a burst holds about a call's
                # worth, and held events die young (CPython's full GC passes scan survivors)
                time.sleep(0)
        return futures

    def flush(self, timeout: float | None = None) -> ProduceResult:
        """Send everything put so far and wait for every outcome (``TimeoutError`` after
        ``timeout`` seconds). The result covers every event resolved since the last flush:
        ``sent`` counts the delivered, ``failed`` names each one not written."""
        with self._work:
            self._raise_if_stopped()
            target = self._core.flush_through()
            self._work.notify()
            self._wait(lambda: self._core.resolved_through(target), timeout)
            return self._core.take_result()

    def close(self, timeout: float | None = None) -> ProduceResult:
        """Flush, stop the sender and refuse further events; returns the final flush result.

        Events still unresolved after ``timeout`` seconds are reported failed as
        ``ProducerClosed`` (if a call is in flight, they may still have been written).
        """
        with self._work:
            if self._closed:
                return self._core.take_result()
            self._closing = True
            self._core.flush_through()
            self._work.notify()
            outcome, timed_out = Outcome(), False
            try:
                self._wait(lambda: self._core.idle or self._stopped is not None, timeout)
            except TimeoutError:
                now, timed_out = self._clock.now(), True
                outcome = self._core.abandon("ProducerClosed", "closed before delivery", now)
                self._work.notify()
            self._closed = True
            result = self._core.take_result()
        _resolve(outcome)
        if self._sender is not None and not timed_out:  # else it ends after its current call
            self._sender.join()
        return result

    @property
    def metrics(self) -> ProducerMetrics:
        """A snapshot of the counters."""
        with self._work:
            return self._core.metrics()

    def __enter__(self) -> EventProducer:
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        result = self.close()
        if not result.ok and exc_type is None:
            raise ProduceError(result)

    # under the lock

    def _add(
        self,
        records: list[Encoded],
        timeout: float | None,
        futures: list[DeliveryFuture] | None,
        accepted: int,
    ) -> bool:
        """Buffer ``records`` (``accepted`` of the ``put_many`` are in already); returns True
        when the caller should yield the GIL to the sender: a call is due, and a call's worth
        of events went in since the last yield (so ``put`` per event yields rarely)."""
        self._raise_if_closed()
        core, index = self._core, 0
        make_token = DeliveryFuture if futures is not None else None
        while True:
            now = self._clock.now()
            index = core.add_many(records, index, now, make_token, futures)
            if index == len(records):
                break
            self._wait_for_room(records[index][3], timeout, accepted + index)
        self._start_sender()
        due = core.due(now)
        if self._sender_idle or due:
            self._work.notify()  # else the sender's timer will see these in time
        self._unyielded += len(records)
        # not when aggregating: there a call's records pack more events the longer they wait
        # (the demo's aggregated records halved in size and its feature writes doubled)
        if due and not self.config.aggregate and self._unyielded >= self.config.max_batch_records:
            self._unyielded = 0
            return True
        return False

    def _wait_for_room(self, size: int, timeout: float | None, accepted: int) -> None:
        if timeout is _DEFAULT:
            timeout = 0.0 if self.config.on_full == "raise" else self.config.put_timeout
        self._start_sender()
        self._work.notify()
        try:
            self._wait(lambda: self._core.has_room(size) or self._closing, timeout)
        except TimeoutError:
            raise Backpressure(self._core.retry_after(self._clock.now()), accepted) from None
        self._raise_if_closed()

    def _raise_if_closed(self) -> None:
        if self._closing or self._stopped is not None:
            raise ProducerClosed("producer is closed")

    def _wait(self, done: Callable[[], bool], timeout: float | None) -> None:
        """Wait on ``_progress`` until ``done()``; ``TimeoutError`` after ``timeout``."""
        deadline = None if timeout is None else self._clock.now() + timeout
        while not done():
            self._raise_if_stopped()
            remaining = None if deadline is None else deadline - self._clock.now()
            if remaining is not None and remaining <= 0:
                raise TimeoutError("producer: timed out waiting for outcomes")
            self._clock.wait(self._progress, remaining)

    def _raise_if_stopped(self) -> None:
        if self._stopped is not None:
            raise ProducerClosed(f"producer sender stopped: {self._stopped!r}")

    def _start_sender(self) -> None:
        if self._sender is None:
            self._sender = threading.Thread(target=self._run, name="EventProducer", daemon=True)
            self._sender.start()

    # the sender thread

    def _run(self) -> None:
        try:
            while self._step():
                pass
        except BaseException as exc:  # a bug or an interpreter exit: report every event
            log.exception("EventProducer sender stopped")
            with self._work:
                self._stopped = exc
                outcome = self._core.abandon("ProducerStopped", repr(exc), self._clock.now())
                self._progress.notify_all()
            _resolve(outcome)

    def _step(self) -> bool:
        """One turn of the sender: refresh the shard map, make one call, or wait."""
        with self._work:
            now = self._clock.now()
            refresh = self._core.shard_map_due(now)
            batch = None if refresh else self._core.next_batch(now)
            if not refresh and batch is None:
                if self._closing and self._core.idle:
                    return False
                wake = self._core.next_wakeup(now)
                self._sender_idle = wake is None
                self._clock.wait(self._work, None if wake is None else max(0.0, wake - now))
                self._sender_idle = False
                return True
        if refresh:
            self._refresh_shard_map()
            return True
        assert batch is not None
        started = self._clock.now()
        try:
            response = self._client.put_records(**batch.request(self._stream))
        except Exception as exc:
            failure = classify(exc)
            log.log(logging.WARNING if failure.retryable else logging.ERROR, "PutRecords: %r", exc)
            with self._work:
                outcome = self._core.on_call_error(batch, failure, self._clock.now(), started)
                self._progress.notify_all()
        else:
            with self._work:
                outcome = self._core.on_response(batch, response, self._clock.now(), started)
                self._progress.notify_all()
        _resolve(outcome)
        return True

    def _refresh_shard_map(self) -> None:
        try:
            shard_map = load_shard_map(self._client, self._stream)
        except Exception as exc:
            log.warning("ListShards failed, not pacing by shard for now: %r", exc)
            shard_map = None
        with self._work:
            self._core.update_shard_map(shard_map, self._clock.now())


def _resolve(outcome: Outcome) -> None:
    """Complete the futures of resolved events (outside the lock: callbacks may put)."""
    resolve(outcome.resolved)
