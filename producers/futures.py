"""``DeliveryFuture``: the result of one ``EventProducer.put``, light enough for one per event.

It has the part of ``concurrent.futures.Future``'s API a producer's caller uses: ``result``,
``exception``, ``done``, ``add_done_callback`` (plus ``cancel``/``cancelled``/``running`` for
code written against ``Future``; a put cannot be taken back, so ``cancel`` returns False), and
``as_future()`` for a real ``Future`` (e.g. for ``concurrent.futures.wait``).

Why not ``Future`` itself: each one builds a ``threading.Condition`` (an ``RLock``, a list of
waiters) and takes it twice, which was a fifth of the producer's cost per event, and its
allocations made CPython's cyclic GC run over every live object more often. A
``DeliveryFuture`` is four slots; the sender resolves a whole call's futures under one lock,
and a ``threading.Event`` is made only for a caller that waits on a future still pending.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from typing import Any

from producers.errors import DeliveryFailed
from producers.records import Delivery, DeliveryFields, FailedEvent

log = logging.getLogger(__name__)

# Guards the pending -> done switch against a waiter or callback arriving at the same moment.
# Held only to flip flags: ``resolve`` takes it once per PutRecords call, not once per event.
_LOCK = threading.Lock()

Callback = Callable[["DeliveryFuture"], object]


class DeliveryFuture:
    """Resolves to the event's ``Delivery``, or raises ``DeliveryFailed`` naming its error."""

    __slots__ = ("_done", "_listeners", "_outcome")

    def __init__(self) -> None:
        self._done = False
        # a delivery is kept as a tuple of Delivery's fields: a tuple of strings and ints is
        # dropped from the cyclic GC's books, so a caller holding many futures costs it less
        self._outcome: tuple[Any, ...] | DeliveryFailed | None = None
        # a threading.Event of a waiter and/or callbacks, made only when someone asks
        self._listeners: list[Any] | None = None

    def done(self) -> bool:
        """True once the event is delivered or failed."""
        return self._done

    def running(self) -> bool:
        """True while the outcome is unknown (a put is never merely scheduled)."""
        return not self._done

    def cancel(self) -> bool:
        """A put cannot be taken back: always False."""
        return False

    def cancelled(self) -> bool:
        """Always False (see ``cancel``)."""
        return False

    def result(self, timeout: float | None = None) -> Delivery:
        """The ``Delivery``; raises ``DeliveryFailed`` if the event was not written, and
        ``TimeoutError`` if no outcome came within ``timeout`` seconds."""
        outcome = self._wait(timeout)
        if isinstance(outcome, DeliveryFailed):
            raise outcome
        return outcome

    def exception(self, timeout: float | None = None) -> DeliveryFailed | None:
        """The ``DeliveryFailed`` of an event not written, ``None`` for a delivered one."""
        outcome = self._wait(timeout)
        return outcome if isinstance(outcome, DeliveryFailed) else None

    def add_done_callback(self, fn: Callback) -> None:
        """Call ``fn(self)`` once resolved: at once if it is, else in the producer's sender
        thread (so ``fn`` must be quick and must not wait for other events)."""
        with _LOCK:
            if not self._done:
                self._listen(fn)
                return
        _call(fn, self)

    def as_future(self) -> Future[Delivery]:
        """A ``concurrent.futures.Future`` resolved with this one."""
        future: Future[Delivery] = Future()
        future.set_running_or_notify_cancel()

        def copy(done: DeliveryFuture) -> None:
            outcome = done._wait(0)
            if isinstance(outcome, DeliveryFailed):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)

        self.add_done_callback(copy)
        return future

    def __repr__(self) -> str:
        return f"<DeliveryFuture {self._wait(0)!r}>" if self._done else "<DeliveryFuture pending>"

    def _wait(self, timeout: float | None) -> Delivery | DeliveryFailed:
        if not self._done:
            with _LOCK:
                waiter = None if self._done else self._waiter()
            if waiter is not None and not waiter.wait(timeout):
                raise TimeoutError("no outcome for this event yet")
        outcome = self._outcome
        assert outcome is not None
        return Delivery(*outcome) if isinstance(outcome, tuple) else outcome

    def _waiter(self) -> threading.Event:
        """The waiters' event (under ``_LOCK``)."""
        for listener in self._listeners or ():
            if isinstance(listener, threading.Event):
                return listener
        waiter = threading.Event()
        self._listen(waiter)
        return waiter

    def _listen(self, listener: Any) -> None:
        if self._listeners is None:
            self._listeners = []
        self._listeners.append(listener)


def resolve(resolved: Iterable[tuple[DeliveryFuture, DeliveryFields | FailedEvent]]) -> None:
    """Complete futures with their results: flags under one lock, then wake waiters and run
    callbacks outside it (callbacks may put)."""
    woken: list[tuple[DeliveryFuture, list[Any]]] = []
    with _LOCK:
        for future, result in resolved:
            if isinstance(result, FailedEvent):
                future._outcome = DeliveryFailed(result)
            else:
                future._outcome = result  # Delivery's fields: made a Delivery when asked
            future._done = True
            if future._listeners is not None:
                woken.append((future, future._listeners))
                future._listeners = None
    for future, listeners in woken:
        for listener in listeners:
            if isinstance(listener, threading.Event):
                listener.set()
            else:
                _call(listener, future)


def _call(fn: Callback, future: DeliveryFuture) -> None:
    try:
        fn(future)
    except Exception:  # as concurrent.futures does: a callback's error is logged, not raised
        log.exception("exception calling callback for %r", future)
