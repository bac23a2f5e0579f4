"""The streaming recommender in the evaluation: its training events go through the stream."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from feature_store.memory import InMemoryOnlineStore
from feature_store.online import FeatureStore
from feature_store.transforms import Sequenced
from feature_store.updates import FeatureUpdater
from infra.settings import Settings
from models.evaluation import ModelSpec, evaluate
from models.interactions import InteractionLog, Interactions
from models.streaming import StreamingModel, memoised
from producers.events import Event
from producers.movielens import load_movielens
from streamrec.through_stream import StreamFeatures

EVENTS = 3_000
GRID = [{"trending": 0.0, "content": 0.0}, {"trending": 0.3, "content": 0.1}]
TIMINGS = ("fit_s", "score_ms_per_user")


def direct(events: Sequence[Event]) -> FeatureStore:
    """The features of ``events`` applied straight through the updater, as one batch."""
    store = InMemoryOnlineStore()
    sequenced = [Sequenced(e, "replay", str(n)) for n, e in enumerate(events)]
    asyncio.run(FeatureUpdater(store).apply("replay", sequenced))
    return store


def spec(source: object) -> ModelSpec:
    features = memoised(source)  # type: ignore[arg-type]
    return ModelSpec(lambda **p: StreamingModel(features, **p), GRID)


def without_timings(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in TIMINGS}


def test_through_the_stream_equals_the_updater_and_replays_once_per_training_set() -> None:
    log = InteractionLog.from_events(load_movielens(EVENTS))
    stream = StreamFeatures(Settings(redis_url=None))
    try:
        through = evaluate(log, {"streaming": spec(stream)})["models"]["streaming"]
    finally:
        stream.close()
    straight = evaluate(log, {"streaming": spec(direct)})["models"]["streaming"]
    assert stream.replays == 2  # the validation fit and the test fit; the grid shares them
    assert without_timings(through) == without_timings(straight)
    assert 0 < through["hr@10"] <= through["hr@20"] <= 1


def test_scores_rank_the_recommenders_list_and_nothing_else() -> None:
    events = load_movielens(EVENTS)
    train = Interactions.from_log(InteractionLog.from_events(events))
    model = StreamingModel(direct).fit(train)
    scores = model.score([0, 1])
    assert scores.shape == (2, len(train.items))
    listed = scores[0][scores[0] > -float("inf")]
    assert 0 < len(listed) <= 100
    assert sorted(listed.tolist(), reverse=True) == list(range(100, 100 - len(listed), -1))


def test_the_streaming_model_needs_the_events() -> None:
    log = InteractionLog.from_events(load_movielens(50))
    bare = InteractionLog(log.user_ids, log.item_ids, log.timestamps, log.order)
    with pytest.raises(ValueError, match="needs the training events"):
        StreamingModel(direct).fit(Interactions.from_log(bare))
