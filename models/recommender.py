"""Recommendations from online features: co-visitation of the user's recent items, then popularity.

The scoring is pure (``score_candidates``, ``backfill``, ``rank``) and tested without I/O;
``Recommender`` only reads the three rows it needs and hands them over.

A candidate's score is the sum, over the user's recent items, of how often it was co-visited with
that item, weighted by ``1 / (1 + rank)`` where rank 0 is the newest recent item. Items the user
has seen (or has in the recent list) are never recommended. When co-visitation yields fewer than
``k`` items, the global popularity list fills the rest; its scores are the items' interaction
totals, so scores compare within one reason only: the list order is the ranking.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass

from feature_store.features import ItemFeatures, Popular, UserFeatures
from feature_store.online import OnlineStore

POPULAR_REASON = "popular"


@dataclass(frozen=True)
class Recommendation:
    """One recommended item, its score and why it was chosen."""

    item_id: str
    score: float
    reason: str


def recency_weight(rank: int) -> float:
    """Weight of a source item by its recency rank (0 = the newest recent item)."""
    return 1.0 / (1 + rank)


def excluded_items(user: UserFeatures | None) -> frozenset[str]:
    """Items never to recommend to ``user``: everything seen and everything recent."""
    if user is None:
        return frozenset()
    return frozenset(user.seen) | {r.item_id for r in user.recent}


def score_candidates(
    user: UserFeatures, items: Sequence[ItemFeatures | None]
) -> list[Recommendation]:
    """Co-visited candidates of ``user``, best first (ties broken by item id).

    ``items`` are the features of ``user.recent``, aligned with it (``None`` for an item the store
    does not know). The reason names the source item that contributed most to the score (the
    newer one on a tie). Excluded items (see ``excluded_items``) never appear.
    """
    excluded = excluded_items(user)
    scores: dict[str, float] = defaultdict(float)
    best_source: dict[str, tuple[float, str]] = {}
    for rank, (recent, features) in enumerate(zip(user.recent, items, strict=False)):
        if features is None:
            continue
        weight = recency_weight(rank)
        for candidate, count in features.covis.items():
            if candidate in excluded or count <= 0:
                continue
            contribution = count * weight
            scores[candidate] += contribution
            if candidate not in best_source or contribution > best_source[candidate][0]:
                best_source[candidate] = (contribution, recent.item_id)
    ranked = sorted(scores.items(), key=lambda pair: (-pair[1], pair[0]))
    return [
        Recommendation(item_id, score, f"seen with {best_source[item_id][1]}")
        for item_id, score in ranked
    ]


def backfill(
    recommendations: Sequence[Recommendation],
    popular: Popular,
    k: int,
    excluded: Collection[str] = (),
) -> list[Recommendation]:
    """The first ``k`` of ``recommendations``, topped up to ``k`` with popular items.

    Popular items already in the list or in ``excluded`` are skipped; the result has no
    duplicates and is shorter than ``k`` only when the popularity list runs out.
    """
    result = list(recommendations[:k])
    taken = {r.item_id for r in result}
    for item_id, total in popular.items:
        if len(result) >= k:
            break
        if item_id in taken or item_id in excluded:
            continue
        result.append(Recommendation(item_id, float(total), POPULAR_REASON))
        taken.add(item_id)
    return result


def rank(
    user: UserFeatures | None,
    items: Sequence[ItemFeatures | None],
    popular: Popular,
    k: int,
) -> list[Recommendation]:
    """The ``k`` recommendations for ``user`` (``None``: an unknown user gets popular items)."""
    if user is None:
        return backfill([], popular, k)
    return backfill(score_candidates(user, items), popular, k, excluded_items(user))


class Recommender:
    """Recommendations read from the online store: three reads, two round trips."""

    def __init__(self, store: OnlineStore) -> None:
        self._store = store

    async def recommend(self, user_id: str, k: int = 10) -> list[Recommendation]:
        """Up to ``k`` recommendations for ``user_id``, best first."""
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        user, popular = await asyncio.gather(self._store.user(user_id), self._store.popular())
        recent_ids = [r.item_id for r in user.recent] if user else []
        items = await self._store.items(recent_ids) if recent_ids else []
        return rank(user, items, popular, k)
