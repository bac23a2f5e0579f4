"""The streaming recommender as an evaluable model: the training events go through the stream
and the feature processors, and users are scored from the online features they produced.

``fit`` hands the training events (``Interactions.log.events``, in time order) to ``features``,
a callable the composition root provides: it replays them through the real stream and
processors and returns the feature store they filled. ``score`` then asks the same
``Recommender`` the worker serves with (``models.recommender``) for each user's top
``SCORED_ITEMS`` as of the newest training event, and turns the list into scores over the
training items (the first gets the highest; items not listed score ``-inf``, below everything).

Replaying is the expensive part and depends only on the events, so ``features`` is called once
per distinct training set (the validation and the test fit of one evaluation) and its result
shared by every grid point: the grid tunes the blend, which is read at scoring time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, Self

import numpy as np

from feature_store.online import FeatureStore
from models.interactions import Interactions
from models.recommender import Blend, Recommender
from producers.events import Event

SCORED_ITEMS = 100  # the recommender's list length per user (metrics look at 20 at most)

# replays events through the stream and processors; the store they filled
FeatureSource = Callable[[Sequence[Event]], FeatureStore]


class StreamingModel:
    """A ``Model`` whose state is the online features the stream processors computed."""

    name: ClassVar[str] = "streaming"

    def __init__(self, features: FeatureSource, **params: float) -> None:
        self._features = features
        self.params: dict[str, Any] = dict(params)
        self._blend = Blend(**params)
        self._train: Interactions | None = None
        self._store: FeatureStore | None = None
        self._now = 0

    def fit(self, train: Interactions) -> Self:
        """Replay ``train``'s events (they must be there: ``InteractionLog.from_events``)."""
        events = train.log.events
        if events is None:
            raise ValueError("the streaming model needs the training events (log.events)")
        self._store = self._features(events)
        self._train = train
        self._now = int(train.log.timestamps.max()) if len(train.log) else 0
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        """Scores over the training items: the recommender's list, best first, then ``-inf``."""
        if self._train is None or self._store is None:
            raise ValueError("fit the streaming model first")
        return asyncio.run(self._score(users, self._train, self._store))

    async def _score(
        self, users: np.ndarray, train: Interactions, store: FeatureStore
    ) -> np.ndarray:
        recommender = Recommender(store, blend=self._blend)
        scores = np.full((len(users), len(train.items)), -np.inf, dtype=np.float32)
        for row, index in enumerate(users):
            recs = await recommender.recommend(train.users[index], SCORED_ITEMS, now_ms=self._now)
            for rank, rec in enumerate(recs):
                column = train.item_index.get(rec.item_id)
                if column is not None:
                    scores[row, column] = SCORED_ITEMS - rank
        return scores

    def to_bytes(self) -> bytes:
        """Nothing to store: the streaming model's state is the online features themselves."""
        raise NotImplementedError("the streaming model is the online store; there is no artifact")


def memoised(features: FeatureSource) -> FeatureSource:
    """``features`` called once per distinct training set (by its event ids), the result kept."""
    done: dict[tuple[int, str, str], FeatureStore] = {}

    def replay(events: Sequence[Event]) -> FeatureStore:
        key = (
            len(events),
            events[0].event_id if events else "",
            events[-1].event_id if events else "",
        )
        if key not in done:
            done[key] = features(events)
        return done[key]

    return replay
