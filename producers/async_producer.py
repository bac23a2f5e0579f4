"""``AsyncEventProducer``: the asyncio producer SDK for one Kinesis stream (aiobotocore).

The same pure ``ProducerCore`` as ``EventProducer`` decides what to send; a sender task makes
the calls. ``await put(event)`` buffers (waiting for room, or raising ``Backpressure``) and
returns an ``asyncio.Future`` of the event's ``Delivery`` or ``DeliveryFailed``;
``await flush()`` and ``await close()`` return a ``ProduceResult`` naming every failed event.
Delivery is at least once per event_id (see ``producers.producer``).

Failures are reported twice, by the future and by ``flush``/``close``, so a future that nobody
awaits does not log "exception was never retrieved".
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable
from typing import Any

from producers.clock import Clock, SystemClock
from producers.config import ProducerConfig
from producers.core import ProducerCore
from producers.errors import Backpressure, DeliveryFailed, ProduceError, ProducerClosed, classify
from producers.events import Event
from producers.metrics import ProducerMetrics
from producers.outcomes import Outcome
from producers.records import Delivery, FailedEvent, ProduceResult, Record
from producers.shards import load_shard_map_async

log = logging.getLogger(__name__)
_DEFAULT: Any = object()  # "the configured put_timeout"


class AsyncEventProducer:
    """An asyncio producer for one stream. ``client`` is an aiobotocore Kinesis client (already
    entered); options are ``ProducerConfig``'s. Use ``async with`` or ``await close()``."""

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
        self._work = asyncio.Event()  # set when the sender has something new to look at
        self._progress = asyncio.Event()  # replaced after each outcome: a broadcast
        self._sender: asyncio.Task[None] | None = None
        self._closing = self._closed = False
        self._stopped: BaseException | None = None

    async def put(
        self, event: Event, *, timeout: float | None = _DEFAULT
    ) -> asyncio.Future[Delivery]:
        """Buffer one event; the future resolves to a ``Delivery`` or ``DeliveryFailed``.

        Raises ``InvalidEvent``, ``ProducerClosed``, or ``Backpressure`` when the buffer stays
        full (``timeout`` overrides the configured ``put_timeout``), as ``EventProducer.put``.
        """
        return (await self.put_many([event], timeout=timeout))[0]

    async def put_many(
        self, events: Iterable[Event], *, timeout: float | None = _DEFAULT
    ) -> list[asyncio.Future[Delivery]]:
        """``put`` each event in order; one future per event."""
        records = [Record.of(event) for event in events]
        loop = asyncio.get_running_loop()
        futures: list[asyncio.Future[Delivery]] = []
        for record in records:
            await self._wait_for_room(record.size, timeout, len(futures))
            future: asyncio.Future[Delivery] = loop.create_future()
            self._core.add(record, self._clock.now(), future)
            futures.append(future)
        self._start_sender()
        self._work.set()
        return futures

    async def flush(self, timeout: float | None = None) -> ProduceResult:
        """Send everything put so far and wait for every outcome; see ``EventProducer.flush``."""
        self._raise_if_stopped()
        target = self._core.flush_through()
        self._work.set()
        await self._wait(lambda: self._core.resolved_through(target), timeout)
        return self._core.take_result()

    async def close(self, timeout: float | None = None) -> ProduceResult:
        """Flush, stop the sender and refuse further events; see ``EventProducer.close``."""
        if self._closed:
            return self._core.take_result()
        self._closing = True
        self._core.flush_through()
        self._work.set()
        try:
            await self._wait(lambda: self._core.idle or self._stopped is not None, timeout)
        except TimeoutError:
            now = self._clock.now()
            _resolve(self._core.abandon("ProducerClosed", "closed before delivery", now))
            if self._sender is not None:
                self._sender.cancel()
        self._closed = True
        if self._sender is not None:
            await asyncio.gather(self._sender, return_exceptions=True)
        return self._core.take_result()

    @property
    def metrics(self) -> ProducerMetrics:
        """A snapshot of the counters."""
        return self._core.metrics()

    async def __aenter__(self) -> AsyncEventProducer:
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        result = await self.close()
        if not result.ok and exc_type is None:
            raise ProduceError(result)

    async def _wait_for_room(self, size: int, timeout: float | None, accepted: int) -> None:
        if self._closing or self._stopped is not None:
            raise ProducerClosed("producer is closed")
        if self._core.has_room(size):
            return
        if timeout is _DEFAULT:
            timeout = 0.0 if self.config.on_full == "raise" else self.config.put_timeout
        self._start_sender()
        self._work.set()
        try:
            await self._wait(lambda: self._core.has_room(size) or self._closing, timeout)
        except TimeoutError:
            raise Backpressure(self._core.retry_after(self._clock.now()), accepted) from None
        if self._closing:
            raise ProducerClosed("producer is closed")

    async def _wait(self, done: Callable[[], bool], timeout: float | None) -> None:
        """Wait for outcomes until ``done()``; ``TimeoutError`` after ``timeout`` seconds."""
        deadline = None if timeout is None else self._clock.now() + timeout
        while not done():
            self._raise_if_stopped()
            remaining = None if deadline is None else deadline - self._clock.now()
            if remaining is not None and remaining <= 0:
                raise TimeoutError("producer: timed out waiting for outcomes")
            await self._clock.wait_async(self._progress.wait(), remaining)

    def _raise_if_stopped(self) -> None:
        if self._stopped is not None:
            raise ProducerClosed(f"producer sender stopped: {self._stopped!r}")

    def _start_sender(self) -> None:
        if self._sender is None:
            self._sender = asyncio.get_running_loop().create_task(self._run())

    def _notify(self) -> None:
        self._progress.set()
        self._progress = asyncio.Event()

    async def _run(self) -> None:
        try:
            while await self._step():
                pass
        except Exception as exc:  # a bug: report every event rather than hang
            log.exception("AsyncEventProducer sender stopped")
            self._stopped = exc
            _resolve(self._core.abandon("ProducerStopped", repr(exc), self._clock.now()))
            self._notify()

    async def _step(self) -> bool:
        """One turn of the sender: refresh the shard map, make one call, or wait."""
        self._work.clear()
        now = self._clock.now()
        if self._core.shard_map_due(now):
            await self._refresh_shard_map()
            return True
        batch = self._core.next_batch(now)
        if batch is None:
            if self._closing and self._core.idle:
                return False
            wake = self._core.next_wakeup(now)
            timeout = None if wake is None else max(0.0, wake - now)
            await self._clock.wait_async(self._work.wait(), timeout)
            return True
        try:
            response = await self._client.put_records(**batch.request(self._stream))
        except Exception as exc:
            failure = classify(exc)
            log.log(logging.WARNING if failure.retryable else logging.ERROR, "PutRecords: %r", exc)
            outcome = self._core.on_call_error(batch, failure, self._clock.now(), now)
        else:
            outcome = self._core.on_response(batch, response, self._clock.now(), now)
        _resolve(outcome)
        self._notify()
        return True

    async def _refresh_shard_map(self) -> None:
        try:
            shard_map = await load_shard_map_async(self._client, self._stream)
        except Exception as exc:
            log.warning("ListShards failed, not pacing by shard for now: %r", exc)
            shard_map = None
        self._core.update_shard_map(shard_map, self._clock.now())


def _resolve(outcome: Outcome) -> None:
    """Complete the futures of resolved events (a cancelled future is left as it is)."""
    for future, result in outcome.resolved:
        if future.done():
            continue
        if isinstance(result, FailedEvent):
            future.set_exception(DeliveryFailed(result))
            future.exception()  # reported by flush/close too: do not log it as unretrieved
        else:
            future.set_result(Delivery(*result))
