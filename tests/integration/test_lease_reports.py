"""What a lease holder reports on its lease row (read by ``streamrec status``), on moto."""

from __future__ import annotations

import time

import pytest

from consumers.leases import LeaseLost, ShardReport
from infra.clients import async_client
from infra.settings import Settings
from tests.integration.test_leases import lease_tables

SHARD = "shardId-000000000000"


async def test_renewals_and_the_release_write_the_report_and_checkpoints_their_time(
    applied: Settings,
) -> None:
    async with async_client("dynamodb", applied) as dynamodb:
        a, b = lease_tables(dynamodb, applied, "a", "b")
        await a.ensure(SHARD, parents=[])
        (seen,) = await a.scan()
        assert seen.report is None and seen.checkpointed_ms is None
        held = await a.take(seen)
        assert held is not None
        before = int(time.time() * 1000)
        await a.checkpoint(held, "120")
        await a.renew(held, ShardReport(1_500, 250.5, 1_000))
        (row,) = await a.scan()
        assert row.report == ShardReport(1_500, 250.5, 1_000)
        assert row.checkpointed_ms is not None and row.checkpointed_ms >= before
        assert (row.owner, row.checkpoint, row.counter) == ("a", "120", held.counter)

        await a.release(held, ShardReport(None, 0.0, 2_000))  # not read yet: the lag is unknown
        (row,) = await a.scan()
        assert row.owner is None and row.report == ShardReport(None, 0.0, 2_000)

        taken = await b.take(row)
        assert taken is not None
        with pytest.raises(LeaseLost):  # a report is conditional on the lease like the rest
            await a.renew(held, ShardReport(9, 9.0, 3_000))
        (row,) = await b.scan()
        assert row.owner == "b" and row.report == ShardReport(None, 0.0, 2_000)
