"""The lease policy: expiry on the taker's clock, fair shares, stealing, parents first."""

from __future__ import annotations

import pytest

from consumers.balancing import ExpiryTracker, available, fair_share, to_take
from consumers.checkpoints import SHARD_END
from consumers.leases import Lease
from consumers.options import LeaseOptions


def leases(*owners: str | None) -> list[Lease]:
    return [Lease(f"s{i}", owner, counter=1) for i, owner in enumerate(owners)]


def test_a_lease_expires_only_after_its_counter_stood_still_for_the_failover_time() -> None:
    tracker = ExpiryTracker(failover_time=10.0)
    lease = Lease("s0", "a", counter=5)
    assert tracker.expired([lease], now=100.0) == set()  # first sight counts as a move
    assert tracker.expired([lease], now=109.9) == set()
    lease.counter = 6  # renewed: the clock starts again
    assert tracker.expired([lease], now=115.0) == set()
    assert tracker.expired([lease], now=125.0) == {"s0"}


def test_a_free_lease_is_never_expired_but_is_taken_at_once() -> None:
    tracker = ExpiryTracker(failover_time=10.0)
    free = leases(None, None)
    assert tracker.expired(free, now=0.0) == set()
    assert [le.shard_id for le in to_take(free, "me", held=(), expired=set())] == ["s0", "s1"]


def test_a_new_worker_takes_only_its_fair_share_of_free_leases() -> None:
    table = leases("a", None, None, None)
    assert fair_share(table, "me", expired=set()) == 2
    assert [le.shard_id for le in to_take(table, "me", held=(), expired=set())] == ["s1", "s2"]


def test_a_worker_steals_one_lease_from_a_worker_over_its_share() -> None:
    table = leases("a", "a", "a", "a")
    taken = to_take(table, "me", held=(), expired=set())
    assert [(le.shard_id, le.owner) for le in taken] == [("s0", "a")]  # one per round
    # once balanced (2 and 2), nobody steals
    assert to_take(leases("a", "a", "me", "me"), "me", held={"s2", "s3"}, expired=set()) == []


def test_three_workers_on_four_shards_settle_without_thrashing() -> None:
    # target ceil(4/3) = 2: a worker short by two steals from one at the target ...
    assert len(to_take(leases("a", "a", "b", "b"), "me", held=(), expired=set())) == 1
    # ... and one short by one does not, or the lease would move back and forth
    assert to_take(leases("a", "me", "b", "b"), "me", held={"s1"}, expired=set()) == []


def test_expired_leases_are_taken_and_their_dead_owner_is_not_counted() -> None:
    table = leases("dead", "dead", "me", "me")
    taken = to_take(table, "me", held={"s2", "s3"}, expired={"s0", "s1"})
    assert [le.shard_id for le in taken] == ["s0", "s1"]


def test_a_lease_in_my_own_name_that_i_do_not_hold_is_mine_to_resume() -> None:
    table = leases("me", "me")
    assert len(to_take(table, "me", held=(), expired=set())) == 2


def test_a_child_is_available_only_once_every_parent_ended() -> None:
    parent_a = Lease("a", None, 1, checkpoint=SHARD_END)
    parent_b = Lease("b", "x", 1, checkpoint="42")
    child = Lease("c", None, 0, parents=("a", "b"))
    orphan = Lease("d", None, 0, parents=("gone",))  # parent aged out of the stream
    assert {le.shard_id for le in available([parent_a, parent_b, child, orphan])} == {"b", "d"}
    parent_b.checkpoint = SHARD_END
    assert {le.shard_id for le in available([parent_a, parent_b, child, orphan])} == {"c", "d"}


def test_renewals_default_to_a_third_of_the_failover_time_and_must_be_shorter() -> None:
    assert LeaseOptions(failover_time=9.0).renewal == 3.0
    with pytest.raises(ValueError, match="shorter than failover_time"):
        _ = LeaseOptions(failover_time=1.0, lease_renewal_interval=1.0).renewal
