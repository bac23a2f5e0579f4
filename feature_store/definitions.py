"""Feature definitions, declared once: name, entity, aggregation, window, TTL, and how the value
is computed from a row's stored state at a given time.

The stream processor and replay maintain the state (``feature_store.transforms``); reads
(``OnlineStore.read``), training sets and the README's feature table all go through ``FEATURES``.
A value is computed for a time ``now``: windows end at ``now`` and decay is applied up to it, so
the same state answers "now" when serving and "at the label time" when building training rows.
A value whose TTL has passed (counted from the newest event that shaped it) reads as missing,
whatever DynamoDB's lazy TTL deletion has or has not done yet.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from feature_store import windows
from feature_store.features import (
    AFFINITY,
    AFFINITY_HALF_LIFE_MS,
    COVIS_TOP_K,
    H1_WEEK,
    ITEM_TTL_MS,
    ITEM_WEEK,
    ITEM_WINDOWS,
    M5,
    POPULARITY_HALF_LIFE_MS,
    SESSION_GAP_MS,
    USER_TTL_MS,
    USER_WINDOWS,
    ItemFeatures,
    Popular,
    UserFeatures,
)
from feature_store.transforms import top_covisited, trending_score

ENTITIES = ("user", "item", "global")
GENRES_SHOWN = 10  # genres in a user's affinity, strongest first
TRENDING_SHOWN = 20  # items in the global trending list as read

State = UserFeatures | ItemFeatures | Popular


@dataclass(frozen=True)
class Feature:
    """One feature: what it is, which stored attributes it is computed from, and how."""

    name: str  # "<entity>.<feature>", unique
    entity: str  # user | item | global
    aggregation: str  # last_n, count, decayed, latest, session, trending, covisitation, top
    window: str | None  # "1h", "24h", "7d", a decay horizon, or None for all time
    ttl_ms: int | None  # the value reads as missing this long after ``updated(state)``
    attributes: tuple[str, ...]  # the row attributes ``compute`` needs (read projections)
    description: str
    compute: Callable[[Any, int], Any]  # (state, now_ms) -> value
    updated: Callable[[Any], int] = lambda state: state.last_seen  # newest event behind it

    def value(self, state: State, now_ms: int) -> Any:
        """The feature's value at ``now_ms``; ``None`` when its TTL has passed."""
        if self.ttl_ms is not None and now_ms > self.updated(state) + self.ttl_ms:
            return None
        return self.compute(state, now_ms)


def _user_counts(window: windows.Window) -> Callable[[UserFeatures, int], dict[str, int]]:
    def compute(state: UserFeatures, now: int) -> dict[str, int]:
        counts = {kind: windows.count(t, window, now) for kind, t in state.tiles.items()}
        return {kind: n for kind, n in sorted(counts.items()) if n}

    return compute


def _item_count(window: windows.Window) -> Callable[[ItemFeatures, int], int]:
    return lambda state, now: windows.count(state.tiles, window, now)


def _affinity(state: UserFeatures, now: int) -> dict[str, float]:
    scores = {
        genre: windows.decayed(buckets, AFFINITY, AFFINITY_HALF_LIFE_MS, now)
        for genre, buckets in state.genres.items()
    }
    ranked = sorted(((g, s) for g, s in scores.items() if s > 0), key=lambda gs: (-gs[1], gs[0]))
    return {genre: round(score, 6) for genre, score in ranked[:GENRES_SHOWN]}


def _session(state: UserFeatures, now: int) -> dict[str, Any] | None:
    s = state.session
    if s is None or s.start > now:
        return None
    return {
        "session_id": s.session_id,
        "start": s.start,
        "last": s.last,
        "length": s.length,
        "items": list(s.items),
    }


def _popularity(state: ItemFeatures, now: int) -> float:
    hourly = state.tiles.get(H1_WEEK.name, {})
    return round(windows.decayed(hourly, H1_WEEK, POPULARITY_HALF_LIFE_MS, now), 6)


def _trending(state: ItemFeatures, now: int) -> float:
    week = windows.count(state.tiles, ITEM_WEEK, now)
    return round(trending_score(state.tiles.get(M5.name, {}), week, now), 6)


def _top_trending(state: Popular, now: int) -> list[list[Any]]:
    scored = [(c.item_id, trending_score(c.recent, c.week, now)) for c in state.trending]
    ranked = sorted(scored, key=lambda kv: (-kv[1], kv[0]))[:TRENDING_SHOWN]
    return [[item, round(score, 6)] for item, score in ranked]


def _user(name: str, aggregation: str, window: str | None, attrs: tuple[str, ...], text: str,
          compute: Callable[[UserFeatures, int], Any], ttl: int | None = USER_TTL_MS,
          updated: Callable[[Any], int] | None = None) -> Feature:  # fmt: skip
    extra = {"updated": updated} if updated else {}
    return Feature(f"user.{name}", "user", aggregation, window, ttl, attrs, text, compute, **extra)


def _item(name: str, aggregation: str, window: str | None, attrs: tuple[str, ...], text: str,
          compute: Callable[[ItemFeatures, int], Any]) -> Feature:  # fmt: skip
    return Feature(f"item.{name}", "item", aggregation, window, ITEM_TTL_MS, attrs, text, compute)


_BUCKETS = {"m5": "5-minute", "h1": "hourly", "d1": "daily"}
_USER_WINDOWED = tuple(
    _user(
        f"event_counts_{w.name}",
        "count",
        w.name,
        ("tiles",),
        f"events per event type in the last {w.name}, in {_BUCKETS[w.resolution.name]} buckets",
        _user_counts(w),
        ttl=None,
    )
    for w in USER_WINDOWS
)
_ITEM_WINDOWED = tuple(
    _item(
        f"interactions_{w.name}",
        "count",
        w.name,
        ("tiles",),
        f"interactions in the last {w.name}, in {_BUCKETS[w.resolution.name]} buckets",
        _item_count(w),
    )
    for w in ITEM_WINDOWS
)

FEATURES: tuple[Feature, ...] = (
    _user("recent_items", "last_n", None, ("recent",),
          "the 50 most recent distinct items, newest first, with event type and time",
          lambda s, now: [
              {"item_id": r.item_id, "event_type": r.event_type, "timestamp": r.timestamp}
              for r in s.recent if r.timestamp <= now
          ]),
    *_USER_WINDOWED,
    _user("event_counts_all", "count", None, ("counts",),
          "events per event type, all time", lambda s, now: dict(sorted(s.counts.items()))),
    _user("genre_affinity", "decayed", "28d", ("genres",),
          "genre/category affinity: events per genre decayed with a 7-day half-life over "
          "daily buckets of the last 28 days, the 10 strongest",
          _affinity),
    _user("last_seen", "latest", None, (), "event time (ms) of the user's newest event",
          lambda s, now: s.last_seen),
    _user("session", "session", None, ("session",),
          "the current session: id (the events' session_id, or a new one after 30 min of "
          "inactivity), start, last event, length, up to 20 distinct items",
          _session, ttl=SESSION_GAP_MS,
          updated=lambda s: s.session.last if s.session else 0),
    _user("seen_items", "last_n", None, ("seen",),
          "up to 5,000 distinct items the user interacted with, oldest first",
          lambda s, now: list(s.seen)),
    *_ITEM_WINDOWED,
    _item("interactions_all", "count", None, ("total",), "interactions, all time",
          lambda s, now: s.total),
    _item("counts_by_type", "count", None, ("counts",), "interactions per event type, all time",
          lambda s, now: dict(sorted(s.counts.items()))),
    _item("popularity", "decayed", "7d",  ("tiles",),
          "interactions decayed with a 24-hour half-life over hourly buckets of the last 7 days",
          _popularity),
    _item("trending", "trending", "1h/7d", ("tiles",),
          "(interactions in the last hour + 1) / (hourly mean over the last 7 days + 1)",
          _trending),
    _item("covisited", "covisitation", None, ("covis",),
          "the 100 items most co-visited with it: an event co-visits the user's 10 previous "
          "distinct items, weighted 10 for the newest down to 1",
          lambda s, now: [[i, w] for i, w in top_covisited(s.covis, COVIS_TOP_K)]),
    _item("last_seen", "latest", None, (), "event time (ms) of the item's newest event",
          lambda s, now: s.last_seen),
    Feature("global.top_popular", "global", "top", None, None, ("items",),
            "the 200 items with the most interactions, all time: [item, interactions]",
            lambda s, now: [list(p) for p in s.items], lambda s: 0),
    Feature("global.top_trending", "global", "trending", "1h/7d", None, ("trending",),
            "the 20 most trending items now (of the 100 candidates kept): [item, score]",
            _top_trending, lambda s: 0),
)  # fmt: skip

BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
if len(BY_NAME) != len(FEATURES):
    raise RuntimeError("two features share a name")


def lookup(names: list[str] | tuple[str, ...]) -> list[Feature]:
    """The definitions of ``names``; an unknown name raises ``KeyError`` naming it."""
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        raise KeyError(f"unknown feature(s) {unknown}; known: {sorted(BY_NAME)}")
    return [BY_NAME[n] for n in names]


def entity_of(key: str) -> str:
    """The entity of a row key (``user#42`` -> ``user``)."""
    entity, sep, _ = key.partition("#")
    if not sep or entity not in ENTITIES:
        raise ValueError(f"row key {key!r} names no entity of {ENTITIES}")
    return entity


def markdown_table() -> str:
    """The README's feature table, generated from ``FEATURES`` (a test keeps them equal)."""
    lines = [
        "| feature | aggregation | window | TTL | definition |",
        "|---|---|---|---|---|",
    ]
    for f in FEATURES:
        ttl = "-" if f.ttl_ms is None else _duration(f.ttl_ms)
        lines.append(
            f"| `{f.name}` | {f.aggregation} | {f.window or 'all time'} | {ttl} | {f.description} |"
        )
    return "\n".join(lines)


def _duration(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000)):
        if ms % size == 0:
            return f"{ms // size} {unit}"
    return f"{ms} ms"
