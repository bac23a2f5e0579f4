"""Point-in-time training sets: each label row gets its features as they were at its label time.

The event log is swept once in event-time order through the same ``FeatureUpdater`` the stream
processor runs, into an in-memory store; before each label time, exactly the events strictly
before it have been applied, and the row's features are read with ``now`` = the label time (so
windows end there and decay is applied up to it). No event at or after a label's time can reach
its row: not the label's own event, not a later one, however the log is ordered.

    rows = await training_rows(labels_from_events(events), events, ["user.event_counts_7d", ...])

Labels come from an entity list (``Label`` rows) or straight from the event log
(``labels_from_events``: each event is a positive example at its own time).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import groupby
from typing import Any

from feature_store.definitions import lookup
from feature_store.features import POPULAR_KEY, item_key, user_key
from feature_store.memory import InMemoryOnlineStore
from feature_store.transforms import Sequenced
from feature_store.updates import FeatureUpdater
from producers.events import Event, EventType

SHARD = "point-in-time"  # the synthetic shard the sweep applies events as


@dataclass(frozen=True)
class Label:
    """One training example: a user, an item, when, and the target value."""

    user_id: str
    item_id: str
    time_ms: int
    label: float = 1.0


def labels_from_events(
    events: Iterable[Event], event_types: Iterable[EventType | str] | None = None
) -> list[Label]:
    """A label per event (of ``event_types``, default all) at its own time; the target is the
    event's ``value`` (a rating) or 1.0."""
    kinds = None if event_types is None else {str(k) for k in event_types}
    return [
        Label(e.user_id, e.item_id, e.timestamp, 1.0 if e.value is None else e.value)
        for e in events
        if kinds is None or str(e.event_type) in kinds
    ]


async def training_rows(
    labels: Sequence[Label], events: Iterable[Event], features: Sequence[str]
) -> list[dict[str, Any]]:
    """A row per label, aligned with ``labels``: ``user_id``, ``item_id``, ``label_time``,
    ``label`` and every asked feature as of the label time (``None`` where the user or item had
    no event before it, or the value had expired). Raises ``KeyError`` for an unknown feature."""
    definitions = lookup(list(features))
    entities = {d.entity for d in definitions}
    ordered = sorted(events, key=lambda e: e.timestamp)  # stable: ties keep the log's order
    store = InMemoryOnlineStore()
    updater = FeatureUpdater(store)
    rows: list[dict[str, Any] | None] = [None] * len(labels)
    applied = 0
    by_time = sorted(range(len(labels)), key=lambda i: labels[i].time_ms)
    for time_ms, group in groupby(by_time, key=lambda i: labels[i].time_ms):
        upto = applied
        while upto < len(ordered) and ordered[upto].timestamp < time_ms:
            upto += 1
        if upto > applied:
            batch = [Sequenced(ordered[n], SHARD, str(n + 1)) for n in range(applied, upto)]
            await updater.apply(SHARD, batch)
            applied = upto
        indices = list(group)
        keys = [POPULAR_KEY] if "global" in entities else []
        for i in indices:
            keys += [user_key(labels[i].user_id), item_key(labels[i].item_id)]
        values = iter(await store.read(keys, features, now_ms=time_ms))
        shared = (next(values) or {}) if "global" in entities else {}
        for i in indices:
            user, item = next(values) or {}, next(values) or {}
            found = {**shared, **user, **item}
            label = labels[i]
            rows[i] = {
                "user_id": label.user_id,
                "item_id": label.item_id,
                "label_time": label.time_ms,
                "label": label.label,
                **{name: found.get(name) for name in features},
            }
    return [row for row in rows if row is not None]
