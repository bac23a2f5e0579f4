"""Shard leases in DynamoDB: which worker reads which shard (docs/decisions/0007).

A lease lives in the shard's checkpoint item of the checkpoints table (``{app}#{shard}``)::

    sequence_number    the checkpoint (absent: never checkpointed; SHARD_END: closed and read)
    lease_owner        the worker holding the lease (absent: free)
    lease_counter      moved by every write of the lease: take, renew, release
    parent_shard_ids   the shard's parents; a child is read only once they all reached SHARD_END
    updated_ms         wall-clock time of the last checkpoint (ms)
    behind_ms, events_per_second, reported_ms, freshness
                       what the holder last reported with a renewal or its release: the
                       shard's MillisBehindLatest, the events/s it processed since the report
                       before, when, and the events applied since then counted by freshness
                       (read by ``streamrec status`` and the worker's ``/pipeline``)

Every write is conditional on the counter the writer last saw, as in the KCL. A taker judges a
lease expired when its counter has not moved for the failover time on the taker's own clock,
so no clock is ever compared across hosts. Checkpoints are conditional on owner and counter, so
a worker that lost its lease can never move its checkpoint.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError

from consumers.checkpoints import SHARD_END, checkpoint_key
from infra.errors import StreamrecError, error_code, translate

CONDITION_FAILED = "ConditionalCheckFailedException"


class LeaseLost(StreamrecError):
    """Another worker holds the lease now (it was stolen, or taken after it expired)."""


@dataclass(frozen=True)
class ShardReport:
    """What a lease's holder last said of its shard: lag and throughput, and when."""

    millis_behind_latest: int | None  # None: not read yet
    events_per_second: float  # since the report before
    reported_ms: int  # wall clock
    # events applied since the report before, by freshness (consumers.features.FRESHNESS_BOUNDS_S)
    freshness: tuple[int, ...] = ()


@dataclass
class Lease:
    """One shard's lease as a worker last read or wrote it."""

    shard_id: str
    owner: str | None
    counter: int
    checkpoint: str | None = None
    parents: tuple[str, ...] = ()
    checkpointed_ms: int | None = None  # wall clock of the last checkpoint (as read)
    report: ShardReport | None = None  # the holder's last report (as read)
    lost: bool = False  # set once a conditional write found another owner
    # renewals and checkpoints of one lease are serialised: each is conditional on the counter
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False, compare=False)

    @property
    def ended(self) -> bool:
        """The shard was closed and read to its end."""
        return self.checkpoint == SHARD_END


def parents_done(lease: Lease, by_shard: dict[str, Lease]) -> bool:
    """Every parent of ``lease`` reached SHARD_END (a parent with no lease aged out of the
    stream's retention: nothing of it is left to read)."""
    return all(p not in by_shard or by_shard[p].ended for p in lease.parents)


class LeaseTable:
    """The leases of one application, written on behalf of one worker (``worker_id``)."""

    def __init__(self, client: Any, table: str, app_name: str, worker_id: str) -> None:
        self._client = client
        self._table = table
        self._app = app_name
        self.worker_id = worker_id

    async def ensure(self, shard_id: str, parents: Sequence[str]) -> None:
        """Create the shard's lease, free, unless it exists (idempotent; keeps a checkpoint)."""
        await self._update(
            shard_id,
            "SET app = :app, shard_id = :shard, lease_counter = if_not_exists(lease_counter, "
            ":zero), parent_shard_ids = if_not_exists(parent_shard_ids, :parents)",
            {
                ":app": {"S": self._app},
                ":shard": {"S": shard_id},
                ":zero": {"N": "0"},
                ":parents": {"L": [{"S": p} for p in parents]},
            },
        )

    async def scan(self) -> list[Lease]:
        """Every lease of the application, read consistently."""
        leases: list[Lease] = []
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "FilterExpression": "app = :app AND attribute_exists(lease_counter)",
            "ExpressionAttributeValues": {":app": {"S": self._app}},
            "ConsistentRead": True,
        }
        while True:
            try:
                page = await self._client.scan(**kwargs)
            except ClientError as exc:
                raise translate("Scan", exc) from exc
            leases += [_lease(item) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return leases
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    async def take(self, seen: Lease) -> Lease | None:
        """Take ``seen`` (free, expired, or stolen) if its counter is still the one seen; the
        lease now held, or None when another write came first."""
        try:
            await self._update(
                seen.shard_id,
                "SET lease_owner = :me, lease_counter = :next",
                {
                    ":me": {"S": self.worker_id},
                    ":next": _n(seen.counter + 1),
                    ":seen": _n(seen.counter),
                },
                condition="lease_counter = :seen",
            )
        except LeaseLost:
            return None
        return Lease(seen.shard_id, self.worker_id, seen.counter + 1, seen.checkpoint, seen.parents)

    async def renew(self, lease: Lease, report: ShardReport | None = None) -> None:
        """Move the counter of a held lease, so takers see it alive, writing ``report`` with
        it. Raises ``LeaseLost``."""
        async with lease.lock:
            expression, values = _with_report("SET lease_counter = :next", [], report)
            await self._held_write(lease, expression, {":next": _n(lease.counter + 1), **values})
            lease.counter += 1

    async def release(self, lease: Lease, report: ShardReport | None = None) -> None:
        """Give the lease up so another worker can take it at once (nothing if already lost),
        writing ``report`` with it."""
        async with lease.lock:
            expression, values = _with_report("SET lease_counter = :next", ["lease_owner"], report)
            try:
                await self._held_write(
                    lease, expression, {":next": _n(lease.counter + 1), **values}
                )
            except LeaseLost:
                return
            lease.counter += 1
            lease.owner = None

    async def checkpoint(self, lease: Lease, sequence_number: str) -> None:
        """Record that every record up to ``sequence_number`` (or ``SHARD_END``) took effect,
        only while holding the lease. Raises ``LeaseLost``: the checkpoint did not move."""
        async with lease.lock:
            await self._held_write(
                lease,
                "SET sequence_number = :seq, updated_ms = :now",
                {":seq": {"S": sequence_number}, ":now": _n(int(time.time() * 1000))},
            )
            lease.checkpoint = sequence_number

    async def delete(self, lease: Lease) -> bool:
        """Delete the lease of a shard that no longer exists, unless it changed since ``lease``
        was read (its counter moved: a worker holds it). False when it had."""
        try:
            await self._client.delete_item(
                TableName=self._table,
                Key=checkpoint_key(self._app, lease.shard_id),
                ConditionExpression="lease_counter = :counter",
                ExpressionAttributeValues={":counter": _n(lease.counter)},
            )
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                return False
            raise translate("DeleteItem", exc) from exc
        return True

    async def _held_write(self, lease: Lease, expression: str, values: dict[str, Any]) -> None:
        if lease.lost:
            raise LeaseLost(f"lease of {lease.shard_id} was lost")
        try:
            await self._update(
                lease.shard_id,
                expression,
                {**values, ":me": {"S": self.worker_id}, ":held": _n(lease.counter)},
                condition="lease_owner = :me AND lease_counter = :held",
            )
        except LeaseLost:
            lease.lost = True
            raise

    async def _update(
        self,
        shard_id: str,
        expression: str,
        values: dict[str, Any],
        condition: str | None = None,
    ) -> None:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": checkpoint_key(self._app, shard_id),
            "UpdateExpression": expression,
            "ExpressionAttributeValues": values,
        }
        if condition:
            kwargs["ConditionExpression"] = condition
        try:
            await self._client.update_item(**kwargs)
        except ClientError as exc:
            if error_code(exc) == CONDITION_FAILED:
                raise LeaseLost(f"lease of {shard_id}: {self.worker_id} does not hold it") from exc
            raise translate("UpdateItem", exc) from exc


def _n(value: float) -> dict[str, str]:
    return {"N": str(value)}


def _with_report(
    expression: str, remove: list[str], report: ShardReport | None
) -> tuple[str, dict[str, Any]]:
    """``expression`` (a SET) extended to write ``report``, and its values."""
    values: dict[str, Any] = {}
    if report is not None:
        expression += ", events_per_second = :rate, reported_ms = :reported, freshness = :fresh"
        values = {
            ":rate": _n(report.events_per_second),
            ":reported": _n(report.reported_ms),
            ":fresh": {"L": [_n(c) for c in report.freshness]},
        }
        if report.millis_behind_latest is None:
            remove = [*remove, "behind_ms"]
        else:
            expression += ", behind_ms = :behind"
            values[":behind"] = _n(report.millis_behind_latest)
    if remove:
        expression += " REMOVE " + ", ".join(remove)
    return expression, values


def _lease(item: dict[str, Any]) -> Lease:
    return Lease(
        shard_id=item["shard_id"]["S"],
        owner=item["lease_owner"]["S"] if "lease_owner" in item else None,
        counter=int(item["lease_counter"]["N"]),
        checkpoint=item["sequence_number"]["S"] if "sequence_number" in item else None,
        parents=tuple(p["S"] for p in item.get("parent_shard_ids", {}).get("L", [])),
        checkpointed_ms=int(item["updated_ms"]["N"]) if "updated_ms" in item else None,
        report=_report(item),
    )


def _report(item: dict[str, Any]) -> ShardReport | None:
    if "reported_ms" not in item:
        return None
    behind = item.get("behind_ms")
    return ShardReport(
        millis_behind_latest=int(behind["N"]) if behind else None,
        events_per_second=float(item["events_per_second"]["N"]),
        reported_ms=int(item["reported_ms"]["N"]),
        freshness=tuple(int(c["N"]) for c in item.get("freshness", {}).get("L", [])),
    )
