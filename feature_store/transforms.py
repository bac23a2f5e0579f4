"""Pure transforms from events to feature updates: no I/O, no clock, easy to test.

The stream processor and batch replay both call these, so features rebuilt from the lake equal
the ones built live. Each transform takes the row as stored and the events not yet applied to it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from feature_store.features import (
    COVIS_TOP_K,
    COVIS_WINDOW,
    POPULAR_TOP_K,
    RECENT_ITEMS,
    SEEN_ITEMS,
    ItemFeatures,
    Popular,
    RecentItem,
    UserFeatures,
)
from feature_store.positions import Position
from producers.events import Event


@dataclass(frozen=True)
class Sequenced:
    """An event with its place in the stream.

    ``sequence_number`` is the Kinesis record's; an event that came inside a KPL-aggregated
    record also has its index there, ``sub_sequence`` (0 for a plain record).
    """

    event: Event
    shard_id: str
    sequence_number: str
    arrival_ms: int = 0  # when Kinesis accepted the record (ApproximateArrivalTimestamp), UTC ms
    sub_sequence: int = 0

    @property
    def position(self) -> Position:
        """Where the event is in its shard; positions compare in stream order."""
        return Position(int(self.sequence_number), self.sub_sequence)

    @property
    def mark(self) -> str:
        """The position as stored text (high-water marks, recent items)."""
        return Position.mark(self.sequence_number, self.sub_sequence)


def fold_user(state: UserFeatures, events: Sequence[Sequenced]) -> UserFeatures:
    """The user's features after ``events`` (in stream order)."""
    recent = list(state.recent)
    seen = dict.fromkeys(state.seen)
    last_seen = state.last_seen
    for s in events:
        e = s.event
        entry = RecentItem(e.item_id, e.event_type.value, e.timestamp, s.shard_id, s.mark)
        recent = _insert_recent(recent, entry)
        seen.pop(e.item_id, None)
        seen[e.item_id] = None
        last_seen = max(last_seen, e.timestamp)
    seen_items = tuple(seen)[-SEEN_ITEMS:]
    return replace(
        state,
        recent=tuple(recent[:RECENT_ITEMS]),
        seen=seen_items,
        events=state.events + len(events),
        last_seen=last_seen,
    )


def _insert_recent(recent: list[RecentItem], entry: RecentItem) -> list[RecentItem]:
    """Put ``entry`` in event-time order (newest first), replacing the item's older entry."""
    others = [r for r in recent if r.item_id != entry.item_id]
    older = next((r for r in recent if r.item_id == entry.item_id), None)
    if older is not None and older.timestamp > entry.timestamp:
        return recent  # a late event does not displace the newer interaction with the same item
    index = next((i for i, r in enumerate(others) if r.timestamp <= entry.timestamp), len(others))
    return [*others[:index], entry, *others[index:]]


def covisit_pairs(
    history: UserFeatures, events: Sequence[Sequenced]
) -> list[tuple[str, str, Sequenced]]:
    """``(item, co-visited item, source)``, both directions, for each event in stream order.

    An event on item ``i`` co-visits the user's ``COVIS_WINDOW`` most recent other items.
    """
    pairs: list[tuple[str, str, Sequenced]] = []
    recent = list(history.recent)
    for s in events:
        e = s.event
        window = [r.item_id for r in recent if r.item_id != e.item_id][:COVIS_WINDOW]
        for other in window:
            pairs.append((e.item_id, other, s))
            pairs.append((other, e.item_id, s))
        entry = RecentItem(e.item_id, e.event_type.value, e.timestamp, s.shard_id, s.mark)
        recent = _insert_recent(recent, entry)[:RECENT_ITEMS]
    return pairs


def fold_item(
    state: ItemFeatures, events: Iterable[Event], covisited: Iterable[str]
) -> ItemFeatures:
    """The item's features after ``events`` on it and the ``covisited`` items they brought."""
    counts = Counter(state.counts)
    added = Counter(e.event_type.value for e in events)
    counts.update(added)
    covis = Counter(state.covis)
    covis.update(covisited)
    top = dict(sorted(covis.items(), key=lambda kv: (-kv[1], kv[0]))[:COVIS_TOP_K])
    return replace(state, counts=dict(counts), total=state.total + sum(added.values()), covis=top)


def merge_popular(state: Popular, totals: Iterable[tuple[str, int]]) -> Popular:
    """The popularity list with the new ``totals`` of some items merged in (totals only grow)."""
    merged = dict(state.items)
    for item_id, total in totals:
        merged[item_id] = max(total, merged.get(item_id, 0))
    ranked = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))[:POPULAR_TOP_K]
    return Popular(items=tuple(ranked))
