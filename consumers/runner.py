"""The embedded runner: reads the shards it leases with aiobotocore in one asyncio process.

Each round (every ``lease_renewal_interval``) it renews its leases, lists the shards when due
(every ``shard_sync_interval``, and at once after a shard ended) creating a lease per new shard
and deleting those of shards that aged out of the stream, takes free and expired leases up to
its fair share (``consumers.balancing``), starts a ``ShardReader`` per new lease, restarts
shards the watchdog finds stuck, and logs the lag.
Runners of one application name in other processes or hosts split the shards between them; a
dead runner's leases are taken over once their counters stood still for ``failover_time``. A
child shard is read only after all its parents reached SHARD_END, so each user's events are
applied in order across splits and merges.

Stopping: setting ``stop`` lets each shard finish the batch in hand and checkpoint, then every
lease is released at once for another runner to take. A failing shard stops the others, releases
the leases and surfaces its error. Cancelling ``run`` is a crash: nothing more is written, and
the leases expire after the failover time.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import zip_longest
from typing import Any

from consumers.balancing import ExpiryTracker, available, to_take
from consumers.dead_letter import DeadLetterSink
from consumers.decoding import decode
from consumers.leases import Lease, LeaseLost, LeaseTable, ShardReport
from consumers.options import LeaseOptions, ReadOptions
from consumers.pacing import list_shards, shard_exists
from consumers.processor import RecordProcessor
from consumers.reader import ShardReader
from consumers.stats import RunnerStats, ShardProgress
from infra.errors import ServiceError
from infra.tasks import cancel_and_wait, gather_or_cancel, wait_any

__all__ = ["EmbeddedRunner", "LeaseOptions", "RunnerStats", "ShardProgress", "decode"]

log = logging.getLogger(__name__)

GET_RECORDS_LIMIT = 10_000
PARENT_KEYS = ("ParentShardId", "AdjacentParentShardId")
DEFAULT_MAX_FAILURES = 5  # a batch failing this often in a row stops the runner (None: never)


@dataclass
class _Shard:
    lease: Lease
    stop: asyncio.Event
    task: asyncio.Task[None]
    # (events, monotonic time) where the throughput window starts, and where it last rolled
    window: tuple[tuple[int, float], tuple[int, float]] = ((0, 0.0), (0, 0.0))


@dataclass
class _Round:
    sync_due: float = 0.0
    lag_due: float = 0.0
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class EmbeddedRunner:
    """Leases shards of ``stream_name`` and drives ``processors`` with what it reads."""

    def __init__(
        self,
        kinesis: Any,
        stream_name: str,
        leases: LeaseTable,
        processors: Sequence[RecordProcessor],
        dead_letter: DeadLetterSink,
        *,
        idle_interval: float = 1.0,
        limit: int = GET_RECORDS_LIMIT,
        max_failures: int | None = DEFAULT_MAX_FAILURES,
        retry_delay: float = 0.5,
        max_retry_delay: float = 30.0,
        lease_options: LeaseOptions | None = None,
    ) -> None:
        self._kinesis, self._stream = kinesis, stream_name
        self._leases = leases
        self._processors = list(processors)
        options = ReadOptions(idle_interval, limit, max_failures, retry_delay, max_retry_delay)
        self._reader = ShardReader(kinesis, stream_name, leases, processors, dead_letter, options)
        self._options = lease_options or LeaseOptions()
        self._renewal = self._options.renewal  # validated here, not at the first round
        self._expiry = ExpiryTracker(self._options.failover_time)
        self._shards: dict[str, _Shard] = {}
        self.stats = RunnerStats()

    @property
    def worker_id(self) -> str:
        """The owner this runner writes on its leases."""
        return self._leases.worker_id

    async def run(
        self, *, until_caught_up: bool = False, stop: asyncio.Event | None = None
    ) -> None:
        """Read leased shards until ``stop`` is set, or (``until_caught_up``) until every shard
        that can be read is held here and answered empty at its tip, or ended."""
        stop = stop or asyncio.Event()
        try:
            await self._supervise(stop, until_caught_up)
            await self._drain()
        except asyncio.CancelledError:
            await self._cancel_all()  # a crash: the leases expire on their own
            raise
        except BaseException:
            await self._cancel_all()
            await self._release_all()
            raise
        await self._release_all()

    async def _supervise(self, stop: asyncio.Event, until_caught_up: bool) -> None:
        state = _Round()
        while not stop.is_set():
            state.wake.clear()
            await self._renew()
            if await self._reap():
                state.sync_due = 0.0  # a shard ended: its children can start now
            await self._watchdog()
            now = time.monotonic()
            listed = None
            if now >= state.sync_due:
                listed = await self._sync_shards()
                state.sync_due = now + self._options.shard_sync_interval
            leases = await self._leases.scan()
            if listed is not None:
                leases = [lease for lease in leases if not await self._forgot(lease, listed)]
            await self._take(leases, until_caught_up, state.wake)
            if now >= state.lag_due:
                self._log_lag()
                state.lag_due = now + self._options.lag_log_interval
            if until_caught_up and self._caught_up(leases):
                return
            await wait_any([stop, state.wake], self._renewal)

    async def _sync_shards(self) -> set[str]:
        """Create a lease for every shard of the stream not seen before (idempotent); the ids
        of the shards listed."""
        shards = await list_shards(self._kinesis, self._stream)
        new = [shard for shard in shards if shard["ShardId"] not in self.stats.shards]
        await gather_or_cancel(
            self._leases.ensure(s["ShardId"], [s[k] for k in PARENT_KEYS if k in s]) for s in new
        )
        for shard in new:
            self.stats.shards[shard["ShardId"]] = ShardProgress()
        return {shard["ShardId"] for shard in shards}

    async def _forgot(self, lease: Lease, listed: set[str]) -> bool:
        """Whether ``lease``'s shard aged out of the stream (past its retention: not ``listed``,
        and the shard itself says so) and the lease was deleted, as the KCL does: nothing can
        read it again, and every reshard would otherwise leave rows for each scan to read
        forever. Its children count it as ended (``parents_done``). A lease a worker holds is
        left alone."""
        if lease.shard_id in listed:
            return False
        if await shard_exists(self._kinesis, self._stream, lease.shard_id):
            return False
        if not await self._leases.delete(lease):
            return False
        self.stats.shards.pop(lease.shard_id, None)
        if lease.ended:
            log.info("shard %s aged out of the stream: its lease deleted", lease.shard_id)
        else:
            log.warning(
                "shard %s aged out of the stream before it was read to its end (checkpoint %s): "
                "its records after that expired unread; its lease deleted",
                lease.shard_id,
                lease.checkpoint,
            )
        return True

    async def _renew(self) -> None:
        """Renew every held lease, concurrently: a slow call must not make the others late."""
        held = [shard for shard in self._shards.values() if not shard.lease.lost]
        await asyncio.gather(*(self._renew_one(shard) for shard in held))

    async def _renew_one(self, shard: _Shard) -> None:
        try:
            await self._leases.renew(shard.lease, self._report(shard))
        except LeaseLost:
            log.warning("shard %s: lease lost to another worker; stopping it", shard.lease.shard_id)
            shard.stop.set()
        except ServiceError as exc:
            # one failed renewal is no loss: the next round renews again, well inside failover
            log.warning("shard %s: lease renewal failed (%s)", shard.lease.shard_id, exc)

    async def _reap(self) -> bool:
        """Forget shards whose reader finished; True if one ended. A reader's error (other than
        a lost lease) is raised here, stopping the runner."""
        ended = False
        for shard_id, shard in list(self._shards.items()):
            if not shard.task.done():
                continue
            error = None if shard.task.cancelled() else shard.task.exception()
            progress = self.stats.shards[shard_id]
            if isinstance(error, LeaseLost) or shard.lease.lost:
                progress.held = False
                del self._shards[shard_id]
            elif error is not None:
                raise error
            elif progress.ended:
                ended = True
                progress.held = False
                del self._shards[shard_id]
                await self._leases.release(shard.lease, self._report(shard))
        return ended

    async def _take(self, leases: list[Lease], until_caught_up: bool, wake: asyncio.Event) -> None:
        expired = self._expiry.expired(leases, time.monotonic())
        for seen in to_take(leases, self.worker_id, self._shards.keys(), expired):
            lease = await self._leases.take(seen)
            if lease is None:
                continue  # another worker came first
            if seen.owner not in (None, self.worker_id):
                log.info("shard %s: took the lease from %s", seen.shard_id, seen.owner)
            self._start(lease, until_caught_up, wake)

    def _start(self, lease: Lease, until_caught_up: bool, wake: asyncio.Event) -> None:
        progress = self.stats.shards.setdefault(lease.shard_id, ShardProgress())
        progress.held, progress.caught_up = True, False
        stop = asyncio.Event()

        async def read() -> None:
            try:
                await self._reader.read(lease, progress, stop, until_caught_up)
            finally:
                wake.set()  # let the supervisor reap it without waiting a round

        counted = (progress.events, time.monotonic())
        task = asyncio.create_task(read())
        self._shards[lease.shard_id] = _Shard(lease, stop, task, (counted, counted))

    def _report(self, shard: _Shard) -> ShardReport:
        """The shard's lag now and its events/s over the last one to two renewal intervals
        (since the lease was taken, at first), written on its lease."""
        progress_id = shard.lease.shard_id
        progress = self.stats.shards[progress_id]
        now = time.monotonic()
        (events, since), rolled = shard.window
        rate = (progress.events - events) / max(now - since, 1e-3)
        if now - rolled[1] >= self._renewal:
            shard.window = (rolled, (progress.events, now))
        freshness: list[int] = []
        for processor in self._processors:
            counts = getattr(processor, "freshness", None)  # the feature processor's histogram
            if counts is not None:
                freshness = [
                    a + b for a, b in zip_longest(freshness, counts(progress_id), fillvalue=0)
                ]
        return ShardReport(
            progress.millis_behind_latest,
            round(rate, 1),
            int(time.time() * 1000),
            tuple(freshness),
        )

    async def _watchdog(self) -> None:
        """Release and restart held shards that made no progress while records wait. Each
        restart in a row doubles that shard's timeout, so a batch that is slow but not stuck
        (a big one on a slow table) is given the time to finish instead of restarted forever."""
        if self._options.watchdog_timeout is None:
            return
        now = time.monotonic()
        for shard_id, shard in list(self._shards.items()):
            progress = self.stats.shards[shard_id]
            timeout = self._options.watchdog_timeout * 2**progress.stuck_in_a_row
            if shard.task.done() or not progress.waiting or now - progress.last_progress < timeout:
                continue
            log.warning(
                "shard %s: no progress for %.1fs with records waiting; restarting it",
                shard_id,
                now - progress.last_progress,
            )
            progress.watchdog_restarts += 1
            progress.stuck_in_a_row += 1
            await cancel_and_wait(shard.task)
            for processor in self._processors:
                await processor.lease_lost(shard_id)
            await self._leases.release(shard.lease)
            progress.held, progress.pending = False, 0
            del self._shards[shard_id]

    def _caught_up(self, leases: list[Lease]) -> bool:
        if any(not shard.task.done() for shard in self._shards.values()):
            return False
        return all(
            lease.shard_id in self._shards and self.stats.shards[lease.shard_id].caught_up
            for lease in available(leases)
        )

    def _log_lag(self) -> None:
        for shard_id, (behind, age) in self.stats.lag().items():
            log.info("shard %s: MillisBehindLatest=%s iterator age=%s ms", shard_id, behind, age)

    async def _drain(self) -> None:
        """Let every reader finish its batch and checkpoint, renewing the leases meanwhile."""
        for shard in self._shards.values():
            shard.stop.set()
        while pending := [s.task for s in self._shards.values() if not s.task.done()]:
            await asyncio.wait(pending, timeout=self._renewal)
            await self._renew()
        await self._reap()

    async def _cancel_all(self) -> None:
        for shard in self._shards.values():
            await cancel_and_wait(shard.task)

    async def _release_all(self) -> None:
        """Give every lease up at once, so another runner takes them without waiting."""
        shards = list(self._shards.values())
        self._shards.clear()
        await gather_or_cancel(self._leases.release(s.lease, self._report(s)) for s in shards)
        for shard in shards:
            self.stats.shards[shard.lease.shard_id].held = False
