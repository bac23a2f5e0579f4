"""Reads of many requests sent together: at most ``max_in_flight`` at a time, the rest batched.

Sixteen concurrent cache misses each need a user row. Sent one GetItem each, they cost sixteen
round trips of per-request overhead (moto serves one request at a time: they queue behind each
other). A ``Batcher`` starts a read at once while fewer than ``max_in_flight`` are out; keys asked
meanwhile wait, and go together (up to ``max_batch`` of them) in the next read as soon as one
returns. Light load costs no added latency (a lone request is read at once); heavy load makes
large batches instead of long queues: the batch size follows the load, with no timer.

A key asked while a read of it is already out waits for the next read: the answer is read after
the request arrived, which is what a strongly consistent read promises. A waiter that gives up
(its deadline) does not cancel the read others wait for. A failed read fails every request that
waited for it, with the read's error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Sequence
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Load = Callable[[list[K]], Awaitable[Sequence[V | None]]]


class Batcher(Generic[K, V]):
    """``get_many`` through ``load`` (values aligned with the keys given, ``None`` for none)."""

    def __init__(self, load: Load[K, V], max_batch: int = 100, max_in_flight: int = 2) -> None:
        if max_batch < 1 or max_in_flight < 1:
            raise ValueError(
                f"max_batch and max_in_flight must be at least 1, not {max_batch} and "
                f"{max_in_flight}"
            )
        self._load = load
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._waiting: dict[K, asyncio.Future[V | None]] = {}
        self._in_flight: set[asyncio.Task[None]] = set()
        self.reads = 0  # loads issued
        self.keys_read = 0

    async def get_many(self, keys: Sequence[K]) -> list[V | None]:
        """The value of each key, aligned with ``keys``."""
        loop = asyncio.get_running_loop()
        futures: dict[K, asyncio.Future[V | None]] = {}
        for key in dict.fromkeys(keys):
            if key not in self._waiting:
                self._waiting[key] = loop.create_future()
            futures[key] = self._waiting[key]
        self._dispatch()
        # shielded: one waiter cancelled must not cancel the future the others wait on
        values = {key: await asyncio.shield(future) for key, future in futures.items()}
        return [values[key] for key in keys]

    async def get(self, key: K) -> V | None:
        """The value of one key."""
        return (await self.get_many([key]))[0]

    def _dispatch(self) -> None:
        while self._waiting and len(self._in_flight) < self._max_in_flight:
            batch = dict(list(self._waiting.items())[: self._max_batch])
            for key in batch:
                del self._waiting[key]
            task = asyncio.ensure_future(self._read(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._dispatch()

    async def _read(self, batch: dict[K, asyncio.Future[V | None]]) -> None:
        self.reads += 1
        self.keys_read += len(batch)
        try:
            values = await self._load(list(batch))
        except Exception as exc:
            self._fail(batch, exc)
            return
        except asyncio.CancelledError:  # the loop is closing: no waiter is left hanging
            self._fail(batch, RuntimeError("the read was cancelled"))
            raise
        for future, value in zip(batch.values(), values, strict=True):
            if not future.done():
                future.set_result(value)

    @staticmethod
    def _fail(batch: dict[K, asyncio.Future[V | None]], exc: Exception) -> None:
        for future in batch.values():
            if not future.done():
                future.set_exception(exc)
                future.exception()  # retrieved here (no warning if nobody waits); waiters raise it
