"""Pure transforms from events to feature updates: no I/O, no clock, easy to test.

The stream processor and batch replay both call these, so features rebuilt from the lake equal
the ones built live. Each transform takes the row as stored and the events not yet applied to it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from operator import itemgetter

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


@dataclass(frozen=True, slots=True)
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
    # where the event is in its shard; positions compare in stream order
    position: Position = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "position", Position(int(self.sequence_number), self.sub_sequence))

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
    stamps: defaultdict[str, list[int]] = defaultdict(list)
    genre_stamps: defaultdict[str, list[int]] = defaultdict(list)
    newest = state.recent[0].timestamp if state.recent else None  # of the recent list
    for s in events:
        e = s.event
        item, ts = e.item_id, e.timestamp
        kind = str(e.event_type)  # StrEnum: str() is the value, and cheaper than .value
        mark = s.sequence_number if not s.sub_sequence else s.mark
        entry = RecentItem(item, kind, ts, s.shard_id, mark)
        if newest is None or ts >= newest:
            recent.pop(item, None)
            recent[item] = entry
            newest = ts
            if len(recent) > RECENT_ITEMS:
                del recent[next(iter(recent))]
        else:
            newest_first = _insert_recent(list(reversed(recent.values())), entry)
            recent = {r.item_id: r for r in reversed(newest_first[:RECENT_ITEMS])}
        seen.pop(item, None)
        seen[item] = None
        if ts > last_seen:
            last_seen = ts
        session = next_session(session, e)
        stamps[kind].append(ts)
        for genre in genres_of(e):
            genre_stamps[genre].append(ts)
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


def genres_of(event: Event) -> tuple[str, ...]:
    """The genres/categories an event's context names (``GENRE_KEYS``, ``|``-separated)."""
    context = event.context or {}
    for key in GENRE_KEYS:
        value = context.get(key)
        if isinstance(value, str) and value:
            return _split_genres(value)
    return ()


@lru_cache(maxsize=4096)
def _split_genres(value: str) -> tuple[str, ...]:
    # an item's events all carry the same string: split it once
    return tuple(g for g in dict.fromkeys(value.split("|")) if g)


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
    item, items = event.item_id, session.items
    if items and items[0] == item:
        pass
    elif item in items:
        items = (item, *[i for i in items if i != item])
    else:
        items = (item, *items[: SESSION_ITEMS - 1])
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
COVIS_WEIGHTS = tuple(range(COVIS_WINDOW, 0, -1))  # by recency rank: newest COVIS_WINDOW, ..., 1


def covisited(
    history: UserFeatures, events: Sequence[Sequenced]
) -> Iterator[tuple[str, list[str]]]:
    """Per event in stream order: its item and the items it co-visits, newest first; the
    ``n``-th of them weighs ``COVIS_WEIGHTS[n]`` (see ``covisit_windows``).

    Only the newest ``COVIS_WINDOW + 1`` distinct items of the user's recent list are needed
    (the window, and the event's own item if among them): they evolve exactly as the head of the
    whole list does (``fold_user``), an insertion never needs an item from further down. They are
    kept as two short lists (items, event times), newest first.
    """
    keep = COVIS_WINDOW + 1
    head = history.recent[:keep]
    items = [r.item_id for r in head]
    stamps = [r.timestamp for r in head]
    for s in events:
        e = s.event
        item, ts = e.item_id, e.timestamp
        yield item, [i for i in items if i != item][:COVIS_WINDOW]
        if item in items:
            at = items.index(item)
            if not stamps or ts >= stamps[0]:  # the usual case: the user's newest event
                del items[at], stamps[at]
            elif stamps[at] > ts:
                continue  # a late event does not displace a newer interaction with its item
            else:
                del items[at], stamps[at]
        if not stamps or ts >= stamps[0]:
            items.insert(0, item)
            stamps.insert(0, ts)
        else:  # a late event: in its place by event time, after those at the same time
            at = next((n for n, t in enumerate(stamps) if t <= ts), len(stamps))
            items.insert(at, item)
            stamps.insert(at, ts)
        if len(items) > keep:
            del items[keep:], stamps[keep:]


def covisit_windows(
    history: UserFeatures, events: Sequence[Sequenced]
) -> list[tuple[Sequenced, CovisitWindow]]:
    """Per event in stream order: the ``(item, weight)`` it co-visits. Pairs count both ways:
    the event's item row takes each of them, and each of their rows takes the event's item.

    An event on item ``i`` co-visits the user's ``COVIS_WINDOW`` most recent other items; the
    newest of them weighs ``COVIS_WINDOW``, the next one less, the oldest 1 (recency weighted,
    in integers so that sums do not depend on the order they are added in).
    """
    return [
        (s, list(zip(others, COVIS_WEIGHTS, strict=False)))
        for s, (_, others) in zip(events, covisited(history, events), strict=True)
    ]


def fold_item(
    state: ItemFeatures,
    events: Sequence[Event],
    covisited: Iterable[tuple[str, int]] | dict[str, int],
) -> ItemFeatures:
    """The item's features after ``events`` on it and the ``(item, weight)`` co-visits they
    brought (pairs, or their sums by item). Co-visits are pruned to the top ``COVIS_TOP_K``
    once past ``COVIS_KEEP``."""
    counts = dict(state.counts)
    last_seen = state.last_seen
    for e in events:
        kind = str(e.event_type)
        counts[kind] = counts.get(kind, 0) + 1
        if e.timestamp > last_seen:
            last_seen = e.timestamp
    if isinstance(covisited, dict):
        # the union at C speed, then the sums of the items in both
        old = state.covis
        covis = old | covisited
        for other in old.keys() & covisited.keys():
            covis[other] = old[other] + covisited[other]
    else:
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
    if len(covis) > k:  # most entries are below the k-th weight: cut them cheaply first
        cut = sorted(covis.values(), reverse=True)[k - 1]
        candidates = [kv for kv in covis.items() if kv[1] >= cut]
    else:
        candidates = list(covis.items())
    candidates.sort(key=itemgetter(0))
    candidates.sort(key=itemgetter(1), reverse=True)  # stable: ties stay by item id
    return candidates[:k]


# trending_score is the same at every now_ms of one step: it counts whole 5-minute buckets
TRENDING_STEP_MS = WINDOW_1H.resolution.size_ms


def trending_score(recent: dict[int, int], week: int, now_ms: int) -> float:
    """Recent rate against the baseline: ``(last hour + 1) / (7-day hourly mean + 1)``.

    Above 1, the item gets more interactions now than it usually does; the prior of one event
    per hour keeps a single event on a quiet item from looking like a trend.
    """
    last_hour = windows.count({M5.name: recent}, WINDOW_1H, now_ms)
    return (last_hour + TRENDING_PRIOR) / (week / (7 * 24) + TRENDING_PRIOR)


def trend_candidate(item: ItemFeatures) -> TrendCandidate:
    """What the global row keeps of an item to rank it as trending later."""
    hourly = item.tiles.get(ITEM_WEEK.resolution.name, {})
    last = item.last_seen // ITEM_WEEK.resolution.size_ms
    if hourly and max(hourly) <= last and min(hourly) > last - ITEM_WEEK.buckets:
        week = sum(hourly.values())  # the usual case: every kept bucket is in the week
    else:
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
