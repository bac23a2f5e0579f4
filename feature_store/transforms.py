"""Pure transforms from events to feature updates: no I/O, no clock, easy to test.

The stream processor and batch replay both call these, so features rebuilt from the lake equal
the ones built live. Each transform takes the row as stored and the events not yet applied to it.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import cached_property

from feature_store import windows
from feature_store.features import (
    AFFINITY,
    COVIS_KEEP,
    COVIS_TOP_K,
    COVIS_WINDOW,
    GENRE_KEYS,
    ITEM_RESOLUTIONS,
    ITEM_WEEK,
    M5,
    POPULAR_TOP_K,
    RECENT_ITEMS,
    SEEN_ITEMS,
    SESSION_GAP_MS,
    SESSION_ITEMS,
    TRENDING_PRIOR,
    TRENDING_TOP_K,
    USER_RESOLUTIONS,
    WINDOW_1H,
    ItemFeatures,
    Popular,
    RecentItem,
    Session,
    TrendCandidate,
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

    @cached_property
    def position(self) -> Position:
        """Where the event is in its shard; positions compare in stream order."""
        return Position(int(self.sequence_number), self.sub_sequence)

    @property
    def mark(self) -> str:
        """The position as stored text (high-water marks, recent items)."""
        return Position.mark(self.sequence_number, self.sub_sequence)


def fold_user(state: UserFeatures, events: Sequence[Sequenced]) -> UserFeatures:
    """The user's features after ``events`` (in stream order)."""
    # the recent list as a dict, oldest first: an event newer than all (the usual case) moves
    # its item to the end in O(1); a late one is put in its place in event-time order
    recent: dict[str, RecentItem] = {r.item_id: r for r in reversed(state.recent)}
    seen = dict.fromkeys(state.seen)
    last_seen = state.last_seen
    session = state.session
    stamps: dict[str, list[int]] = {}
    genre_stamps: dict[str, list[int]] = {}
    for s in events:
        e = s.event
        kind = str(e.event_type)  # StrEnum: str() is the value, and cheaper than .value
        entry = RecentItem(e.item_id, kind, e.timestamp, s.shard_id, s.mark)
        if not recent or e.timestamp >= recent[next(reversed(recent))].timestamp:
            recent.pop(e.item_id, None)
            recent[e.item_id] = entry
            if len(recent) > RECENT_ITEMS:
                del recent[next(iter(recent))]
        else:
            newest_first = _insert_recent(list(reversed(recent.values())), entry)
            recent = {r.item_id: r for r in reversed(newest_first[:RECENT_ITEMS])}
        seen.pop(e.item_id, None)
        seen[e.item_id] = None
        if e.timestamp > last_seen:
            last_seen = e.timestamp
        session = next_session(session, e)
        stamps.setdefault(kind, []).append(e.timestamp)
        for genre in genres_of(e):
            genre_stamps.setdefault(genre, []).append(e.timestamp)
    counts = Counter(state.counts)
    counts.update({kind: len(ts) for kind, ts in stamps.items()})
    tiles = {
        kind: windows.add(
            state.tiles.get(kind, {}), USER_RESOLUTIONS, stamps.get(kind, ()), last_seen
        )
        for kind in counts
    }
    genres = {
        genre: windows.add(
            {AFFINITY.name: state.genres.get(genre, {})},
            (AFFINITY,),
            genre_stamps.get(genre, ()),
            last_seen,
        )[AFFINITY.name]
        for genre in state.genres.keys() | genre_stamps.keys()
    }
    return replace(
        state,
        recent=tuple(reversed(recent.values())),
        seen=tuple(seen)[-SEEN_ITEMS:],
        events=state.events + len(events),
        last_seen=last_seen,
        counts=dict(counts),
        tiles={kind: t for kind, t in tiles.items() if any(t.values())},
        genres={genre: b for genre, b in genres.items() if b},
        session=session,
    )


def genres_of(event: Event) -> list[str]:
    """The genres/categories an event's context names (``GENRE_KEYS``, ``|``-separated)."""
    context = event.context or {}
    for key in GENRE_KEYS:
        value = context.get(key)
        if isinstance(value, str) and value:
            return [g for g in dict.fromkeys(value.split("|")) if g]
    return []


def next_session(session: Session | None, event: Event) -> Session | None:
    """The current session after ``event``: the same one, extended, or a new one.

    An event with a ``session_id`` belongs to that session; otherwise a gap of more than
    ``SESSION_GAP_MS`` after the session's newest event starts a new one (named after its start).
    A late event of an earlier session leaves the current one as it is.
    """
    ts = event.timestamp
    if session is not None:
        if event.session_id is not None and event.session_id == session.session_id:
            return _extend(session, event)
        if event.session_id is not None and ts < session.last:
            return session  # a late event of an earlier session
        if event.session_id is None and ts < session.start:
            return session  # a late event of an earlier session
        if event.session_id is None and ts <= session.last + SESSION_GAP_MS:
            return _extend(session, event)
    return Session(event.session_id or f"s-{ts}", ts, ts, 1, (event.item_id,))


def _extend(session: Session, event: Event) -> Session:
    if session.items and session.items[0] == event.item_id:
        items = session.items
    else:
        items = (event.item_id, *(i for i in session.items if i != event.item_id))
    ts = event.timestamp
    return Session(
        session.session_id,
        session.start if session.start <= ts else ts,
        session.last if session.last >= ts else ts,
        session.length + 1,
        items[:SESSION_ITEMS],
    )


def _insert_recent(recent: list[RecentItem], entry: RecentItem) -> list[RecentItem]:
    """Put ``entry`` in event-time order (newest first), replacing the item's older entry."""
    if not recent or entry.timestamp >= recent[0].timestamp:  # the usual case: the newest
        item = entry.item_id
        result = [entry]
        result += [r for r in recent if r.item_id != item]
        return result
    others = [r for r in recent if r.item_id != entry.item_id]
    older = next((r for r in recent if r.item_id == entry.item_id), None)
    if older is not None and older.timestamp > entry.timestamp:
        return recent  # a late event does not displace the newer interaction with the same item
    index = next((i for i, r in enumerate(others) if r.timestamp <= entry.timestamp), len(others))
    return [*others[:index], entry, *others[index:]]


CovisitWindow = list[tuple[str, int]]  # (item, weight) co-visited by one event


def covisit_windows(
    history: UserFeatures, events: Sequence[Sequenced]
) -> list[tuple[Sequenced, CovisitWindow]]:
    """Per event in stream order: the ``(item, weight)`` it co-visits. Pairs count both ways:
    the event's item row takes each of them, and each of their rows takes the event's item.

    An event on item ``i`` co-visits the user's ``COVIS_WINDOW`` most recent other items; the
    newest of them weighs ``COVIS_WINDOW``, the next one less, the oldest 1 (recency weighted,
    in integers so that sums do not depend on the order they are added in).
    """
    result: list[tuple[Sequenced, CovisitWindow]] = []
    # the newest COVIS_WINDOW + 1 distinct items (the window, and the event's own item if among
    # them) evolve exactly as the head of the whole recent list does: an insertion never needs
    # an item from further down
    keep = COVIS_WINDOW + 1
    recent = list(history.recent[:keep])
    for s in events:
        e = s.event
        others = [r.item_id for r in recent if r.item_id != e.item_id][:COVIS_WINDOW]
        result.append((s, [(other, COVIS_WINDOW - rank) for rank, other in enumerate(others)]))
        entry = RecentItem(e.item_id, str(e.event_type), e.timestamp, s.shard_id, s.mark)
        recent = _insert_recent(recent, entry)[:keep]
    return result


def fold_item(
    state: ItemFeatures, events: Sequence[Event], covisited: Iterable[tuple[str, int]]
) -> ItemFeatures:
    """The item's features after ``events`` on it and the ``(item, weight)`` co-visits they
    brought. Co-visits are pruned to the top ``COVIS_TOP_K`` once past ``COVIS_KEEP``."""
    counts = dict(state.counts)
    last_seen = state.last_seen
    for e in events:
        kind = str(e.event_type)
        counts[kind] = counts.get(kind, 0) + 1
        if e.timestamp > last_seen:
            last_seen = e.timestamp
    covis = dict(state.covis)
    get = covis.get
    for other, weight in covisited:
        covis[other] = get(other, 0) + weight
    if len(covis) > COVIS_KEEP:
        covis = dict(top_covisited(covis, COVIS_TOP_K))
    tiles = windows.add(state.tiles, ITEM_RESOLUTIONS, [e.timestamp for e in events], last_seen)
    return ItemFeatures(state.item_id, counts, state.total + len(events), covis, tiles, last_seen)


def top_covisited(covis: dict[str, int], k: int = COVIS_TOP_K) -> list[tuple[str, int]]:
    """The ``k`` heaviest co-visited items, heaviest first (ties by item id)."""
    if len(covis) > 2 * k:  # most entries are far below the k-th weight: cut them cheaply first
        cut = heapq.nlargest(k, covis.values())[-1]
        candidates = [kv for kv in covis.items() if kv[1] >= cut]
    else:
        candidates = list(covis.items())
    return sorted(candidates, key=lambda kv: (-kv[1], kv[0]))[:k]


def trending_score(recent: dict[int, int], week: int, now_ms: int) -> float:
    """Recent rate against the baseline: ``(last hour + 1) / (7-day hourly mean + 1)``.

    Above 1, the item gets more interactions now than it usually does; the prior of one event
    per hour keeps a single event on a quiet item from looking like a trend.
    """
    last_hour = windows.count({M5.name: recent}, WINDOW_1H, now_ms)
    return (last_hour + TRENDING_PRIOR) / (week / (7 * 24) + TRENDING_PRIOR)


def trend_candidate(item: ItemFeatures) -> TrendCandidate:
    """What the global row keeps of an item to rank it as trending later."""
    week = windows.count(item.tiles, ITEM_WEEK, item.last_seen)
    return TrendCandidate(item.item_id, dict(item.tiles.get(M5.name, {})), week, item.last_seen)


def merge_popular(state: Popular, items: Iterable[ItemFeatures]) -> Popular:
    """The global row with some items' new state merged in.

    Totals only grow, so the popular list keeps each item's largest total. The trending list keeps
    each item's newest candidate, ranked by ``trending_score`` at the newest event time seen.
    """
    merged = dict(state.items)
    candidates = {c.item_id: c for c in state.trending}
    for item in items:
        merged[item.item_id] = max(item.total, merged.get(item.item_id, 0))
        new = trend_candidate(item)
        old = candidates.get(item.item_id)
        if old is None or _fresher(new, old):
            candidates[item.item_id] = new
    ranked = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))[:POPULAR_TOP_K]
    now = max((c.last_seen for c in candidates.values()), default=0)
    trending = sorted(
        candidates.values(), key=lambda c: (-trending_score(c.recent, c.week, now), c.item_id)
    )
    return Popular(items=tuple(ranked), trending=tuple(trending[:TRENDING_TOP_K]))


def _fresher(new: TrendCandidate, old: TrendCandidate) -> bool:
    """Whether ``new`` was taken from a later state of the item than ``old``."""
    return (new.last_seen, new.week, sum(new.recent.values())) > (
        old.last_seen,
        old.week,
        sum(old.recent.values()),
    )
