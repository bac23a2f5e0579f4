"""The state the online store keeps per row, and the bounds that keep rows small.

Row keys in the features table (one table, hash key ``pk``):

    user#<user_id>     UserFeatures   recent items, seen items, counts per event type in tiles,
                                      genre tiles, the current session
    item#<item_id>     ItemFeatures   interactions per event type and in tiles, co-visited items
    global#popular     Popular        the most interacted-with items, the trending candidates

This is stored STATE; the features served are computed from it at read time for a given ``now``
(``feature_store.definitions``), so time windows and decay need no rewrite to stay current.

Every row also carries ``version`` (optimistic concurrency) and one ``hwm:<shard id>`` attribute
per source shard: the highest sequence number already applied to the row (exactly-once effect).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

from feature_store.windows import DAY_MS, HOUR_MS, MINUTE_MS, Resolution, Tiles, Window

RECENT_ITEMS = 50  # distinct items kept in a user's recent list
SEEN_ITEMS = 5_000  # distinct items remembered per user, to exclude them from recommendations
COVIS_WINDOW = 10  # an event co-visits the user's this many most recent distinct items
COVIS_TOP_K = 100  # co-visited items served per item
# Co-visited items stored per item row: past this many the row is pruned back to COVIS_TOP_K
# (amortised pruning; bounded, so no row nears DynamoDB's 400 KB limit)
COVIS_KEEP = 2 * COVIS_TOP_K
POPULAR_TOP_K = 200  # items kept in the global popularity list
TRENDING_TOP_K = 100  # items kept in the global trending list
SESSION_GAP_MS = 30 * MINUTE_MS  # inactivity that ends a session (when events carry no session_id)
SESSION_ITEMS = 20  # distinct items kept in the current session, newest first
GENRE_KEYS = ("genres", "category")  # context keys naming an item's genres/categories, "|"-split

# Tiles: users count per event type at 5 min (the 1 h window), 1 h (24 h) and 1 d (7 d)
# resolution; items keep hourly buckets for a week (24 h and 7 d windows, decayed popularity and
# the trending baseline); genre affinity keeps daily buckets for four half-lives.
M5 = Resolution("m5", 5 * MINUTE_MS, 12)
H1_DAY = Resolution("h1", HOUR_MS, 24)
H1_WEEK = Resolution("h1", HOUR_MS, 7 * 24)
D1_WEEK = Resolution("d1", DAY_MS, 7)
USER_RESOLUTIONS = (M5, H1_DAY, D1_WEEK)
ITEM_RESOLUTIONS = (M5, H1_WEEK)
AFFINITY_HALF_LIFE_MS = 7 * DAY_MS
AFFINITY = Resolution("d1", DAY_MS, 28)
POPULARITY_HALF_LIFE_MS = DAY_MS
USER_TTL_MS = 90 * DAY_MS  # a user row expires this long after the user's newest event
ITEM_TTL_MS = 365 * DAY_MS  # an item row expires this long after the item's newest event
TRENDING_PRIOR = 1.0  # events per hour added to both rates of the trending score

WINDOW_1H = Window("1h", HOUR_MS, M5)
USER_WINDOWS = (WINDOW_1H, Window("24h", DAY_MS, H1_DAY), Window("7d", 7 * DAY_MS, D1_WEEK))
ITEM_WEEK = Window("7d", 7 * DAY_MS, H1_WEEK)
ITEM_WINDOWS = (WINDOW_1H, Window("24h", DAY_MS, H1_WEEK), ITEM_WEEK)

POPULAR_KEY = "global#popular"  # the one global row: popular and trending lists


def user_key(user_id: str) -> str:
    """Row key of a user's features."""
    return f"user#{user_id}"


def item_key(item_id: str) -> str:
    """Row key of an item's features."""
    return f"item#{item_id}"


class RecentItem(NamedTuple):
    """One entry of a user's recent list: the latest interaction with ``item_id``.

    A named tuple, not a dataclass: one is made per event, and a tuple is made several times
    faster (the processor's CPU cost, ``bench/features.py``)."""

    item_id: str
    event_type: str
    timestamp: int
    shard_id: str
    sequence_number: str  # the record's position as text (``Position.mark``): "seq" or "seq:sub"


class Session(NamedTuple):
    """The user's current session: the events since the last gap (or of its ``session_id``).
    A named tuple: one is made per event."""

    session_id: str
    start: int  # event time (ms) of its first event
    last: int  # event time (ms) of its newest event
    length: int  # events in it
    items: tuple[str, ...] = ()  # distinct items, newest first, at most SESSION_ITEMS


@dataclass(frozen=True, slots=True)
class UserFeatures:
    """A user's online state."""

    user_id: str
    recent: tuple[RecentItem, ...] = ()  # distinct items, newest first, at most RECENT_ITEMS
    seen: tuple[str, ...] = ()  # distinct, oldest first, at most SEEN_ITEMS (oldest dropped first)
    events: int = 0
    last_seen: int = 0  # event time (ms) of the newest event
    counts: dict[str, int] = field(default_factory=dict)  # all-time events per event type
    tiles: dict[str, Tiles] = field(default_factory=dict)  # event type -> USER_RESOLUTIONS tiles
    genres: dict[str, dict[int, int]] = field(default_factory=dict)  # genre -> AFFINITY buckets
    session: Session | None = None


@dataclass(frozen=True, slots=True)
class ItemFeatures:
    """An item's online state."""

    item_id: str
    counts: dict[str, int] = field(default_factory=dict)  # all-time events per event type
    total: int = 0
    covis: dict[str, int] = field(default_factory=dict)  # co-visited item -> recency weight
    tiles: Tiles = field(default_factory=dict)  # interactions, ITEM_RESOLUTIONS
    last_seen: int = 0  # event time (ms) of the newest event


@dataclass(frozen=True, slots=True)
class TrendCandidate:
    """An item's trending state as of its last update: its 5-minute tiles and its 7-day count."""

    item_id: str
    recent: dict[int, int]  # M5 buckets
    week: int  # interactions in the 7 days before its newest event
    last_seen: int


@dataclass(frozen=True, slots=True)
class Popular:
    """The global row: the most interacted-with items, ``(item_id, total)`` by total
    descending, and the trending candidates (ranked at read time: the score moves with time)."""

    items: tuple[tuple[str, int], ...] = ()
    trending: tuple[TrendCandidate, ...] = ()
