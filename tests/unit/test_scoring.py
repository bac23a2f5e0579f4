"""Pure scoring: co-visitation weighted by recency, exclusions, popularity backfill."""

from __future__ import annotations

import pytest

from feature_store.features import ItemFeatures, Popular, RecentItem, UserFeatures
from models.recommender import (
    POPULAR_REASON,
    Recommendation,
    backfill,
    rank,
    recency_weight,
    score_candidates,
)


def recent(*item_ids: str) -> tuple[RecentItem, ...]:
    """Recent entries, newest first."""
    return tuple(
        RecentItem(i, "view", 1_000 - n, "shard-0", str(n)) for n, i in enumerate(item_ids)
    )


def user(recent_ids: tuple[str, ...], seen: tuple[str, ...] = ()) -> UserFeatures:
    return UserFeatures("u1", recent=recent(*recent_ids), seen=seen or recent_ids)


POPULAR = Popular((("p1", 90), ("c", 80), ("p2", 70), ("seen", 60), ("p3", 50)))


def test_recency_weight_halves_at_rank_one() -> None:
    assert recency_weight(0) == 1.0
    assert recency_weight(1) == 0.5
    assert recency_weight(3) == 0.25


def test_co_visited_items_rank_by_recency_weighted_count() -> None:
    u = user(("new", "old"))
    items = [
        ItemFeatures("new", covis={"c": 2, "d": 1}),
        ItemFeatures("old", covis={"c": 2, "e": 5}),
    ]
    recs = score_candidates(u, items)
    # c: 2*1 + 2*0.5 = 3.0; e: 5*0.5 = 2.5; d: 1*1 = 1.0
    assert [(r.item_id, r.score) for r in recs] == [("c", 3.0), ("e", 2.5), ("d", 1.0)]


def test_reason_names_the_source_item_that_contributed_most() -> None:
    u = user(("new", "old"))
    items = [ItemFeatures("new", covis={"c": 1}), ItemFeatures("old", covis={"c": 6})]
    (rec,) = score_candidates(u, items)
    assert rec.reason == "seen with old"


def test_ties_break_by_item_id() -> None:
    recs = score_candidates(user(("a",)), [ItemFeatures("a", covis={"z": 1, "m": 1})])
    assert [r.item_id for r in recs] == ["m", "z"]


def test_seen_and_recent_items_are_never_candidates() -> None:
    u = UserFeatures("u1", recent=recent("a", "b"), seen=("old-seen", "a"))
    items = [
        ItemFeatures("a", covis={"b": 9, "old-seen": 9, "fresh": 1}),
        ItemFeatures("b", covis={"a": 9}),
    ]
    assert [r.item_id for r in score_candidates(u, items)] == ["fresh"]


def test_unknown_recent_items_contribute_nothing() -> None:
    u = user(("gone", "a"))
    recs = score_candidates(u, [None, ItemFeatures("a", covis={"c": 2})])
    assert recs == [Recommendation("c", 1.0, "seen with a")]


def test_backfill_fills_to_k_without_duplicates_and_skips_excluded() -> None:
    covis = [Recommendation("c", 3.0, "seen with a")]
    recs = backfill(covis, POPULAR, k=4, excluded={"seen"})
    assert [r.item_id for r in recs] == ["c", "p1", "p2", "p3"]
    assert len({r.item_id for r in recs}) == len(recs)
    assert [r.reason for r in recs[1:]] == [POPULAR_REASON] * 3
    assert recs[1].score == 90.0


def test_backfill_keeps_co_visited_first_and_truncates_to_k() -> None:
    covis = [Recommendation(i, 1.0, "seen with a") for i in ("x", "y", "z")]
    assert [r.item_id for r in backfill(covis, POPULAR, k=2)] == ["x", "y"]


def test_backfill_is_short_only_when_popularity_runs_out() -> None:
    assert len(backfill([], POPULAR, k=50)) == len(POPULAR.items)
    assert backfill([], Popular(), k=3) == []


@pytest.mark.parametrize("k", [1, 3, 5])
def test_unknown_user_gets_the_most_popular_items(k: int) -> None:
    recs = rank(None, [], POPULAR, k)
    assert [r.item_id for r in recs] == [i for i, _ in POPULAR.items[:k]]
    assert all(r.reason == POPULAR_REASON for r in recs)


def test_rank_combines_co_visitation_exclusions_and_backfill() -> None:
    u = UserFeatures("u1", recent=recent("a"), seen=("a", "seen"))
    recs = rank(u, [ItemFeatures("a", covis={"c": 4, "seen": 10})], POPULAR, k=4)
    assert [(r.item_id, r.reason) for r in recs] == [
        ("c", "seen with a"),
        ("p1", POPULAR_REASON),
        ("p2", POPULAR_REASON),
        ("p3", POPULAR_REASON),
    ]


def test_user_without_recent_items_gets_popular_minus_seen() -> None:
    u = UserFeatures("u1", seen=("p1",))
    assert [r.item_id for r in rank(u, [], POPULAR, k=2)] == ["c", "p2"]
