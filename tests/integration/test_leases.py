"""Leases on moto's DynamoDB: conditional takes, and a lost lease can never move a checkpoint."""

from __future__ import annotations

from typing import Any

import pytest

from consumers.checkpoints import DynamoCheckpointer
from consumers.leases import LeaseLost, LeaseTable
from infra.clients import async_client
from infra.settings import Settings

SHARD = "shardId-000000000000"


def lease_tables(dynamodb: Any, settings: Settings, *workers: str) -> list[LeaseTable]:
    """The settings' lease table as seen by each of ``workers``."""
    return [LeaseTable(dynamodb, settings.checkpoints_table, settings.app_name, w) for w in workers]


async def test_a_worker_whose_lease_was_taken_cannot_checkpoint(applied: Settings) -> None:
    async with async_client("dynamodb", applied) as dynamodb:
        a, b = lease_tables(dynamodb, applied, "a", "b")
        checkpoints = DynamoCheckpointer(dynamodb, applied.checkpoints_table, applied.app_name)
        await a.ensure(SHARD, parents=[])
        (seen,) = await a.scan()
        held = await a.take(seen)
        assert held is not None and held.owner == "a"
        assert await b.take(seen) is None  # the counter moved since b saw it
        await a.renew(held)
        await a.checkpoint(held, "100")

        (seen_by_b,) = await b.scan()
        stolen = await b.take(seen_by_b)
        assert stolen is not None and stolen.checkpoint == "100"
        with pytest.raises(LeaseLost):
            await a.checkpoint(held, "200")
        assert held.lost
        with pytest.raises(LeaseLost):
            await a.renew(held)
        assert await checkpoints.get(SHARD) == "100"

        await b.checkpoint(stolen, "300")
        await a.release(held)  # a lost lease: releasing it must not free b's
        (row,) = await b.scan()
        assert (row.owner, row.checkpoint) == ("b", "300")
        await b.release(stolen)
        (row,) = await b.scan()
        assert row.owner is None and row.counter == stolen.counter


async def test_ensure_keeps_an_existing_checkpoint_and_lease(applied: Settings) -> None:
    async with async_client("dynamodb", applied) as dynamodb:
        table = LeaseTable(dynamodb, applied.checkpoints_table, applied.app_name, "a")
        checkpoints = DynamoCheckpointer(dynamodb, applied.checkpoints_table, applied.app_name)
        await checkpoints.set(SHARD, "77")  # a checkpoint written before leases existed
        await table.ensure(SHARD, parents=["shardId-p"])
        (seen,) = await table.scan()
        held = await table.take(seen)
        assert held is not None
        await table.ensure(SHARD, parents=["other"])
        (row,) = await table.scan()
        assert (row.owner, row.checkpoint, row.parents) == ("a", "77", ("shardId-p",))
        assert row.counter == held.counter


async def test_a_lease_is_deleted_only_as_it_was_read(applied: Settings) -> None:
    async with async_client("dynamodb", applied) as dynamodb:
        a, b = lease_tables(dynamodb, applied, "a", "b")
        await a.ensure(SHARD, parents=[])
        (seen,) = await a.scan()
        held = await b.take(seen)  # the counter moved since a read it
        assert held is not None
        assert not await a.delete(seen)
        assert [lease.owner for lease in await a.scan()] == ["b"]
        (now,) = await a.scan()
        assert await a.delete(now)
        assert await a.scan() == []
