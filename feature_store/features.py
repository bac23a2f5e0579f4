"""Feature definitions: what the online store keeps, and the bounds that keep rows small.

Row keys in the features table (one table, hash key ``pk``):

    user#<user_id>     UserFeatures   recent items (distinct, newest first), seen items, counts
    item#<item_id>     ItemFeatures   interactions per event type, co-visited items (top-K)
    global#popular     Popular        the most interacted-with items

Every row also carries ``version`` (optimistic concurrency) and one ``hwm:<shard id>`` attribute
per source shard: the highest sequence number already applied to the row (exactly-once effect).
"""

from __future__ import annotations

from dataclasses import dataclass, field

RECENT_ITEMS = 50  # distinct items kept in a user's recent list
SEEN_ITEMS = 5_000  # distinct items remembered per user, to exclude them from recommendations
COVIS_WINDOW = 10  # an event co-visits the user's this many most recent distinct items
COVIS_TOP_K = 100  # co-visited items kept per item row (bounded: DynamoDB rows stop at 400 KB)
POPULAR_TOP_K = 200  # items kept in the global popularity row

POPULAR_KEY = "global#popular"


def user_key(user_id: str) -> str:
    """Row key of a user's features."""
    return f"user#{user_id}"


def item_key(item_id: str) -> str:
    """Row key of an item's features."""
    return f"item#{item_id}"


@dataclass(frozen=True)
class RecentItem:
    """One entry of a user's recent list: the latest interaction with ``item_id``."""

    item_id: str
    event_type: str
    timestamp: int
    shard_id: str
    sequence_number: str  # the record's position as text (``Position.mark``): "seq" or "seq:sub"


@dataclass(frozen=True)
class UserFeatures:
    """A user's online features."""

    user_id: str
    recent: tuple[RecentItem, ...] = ()  # distinct items, newest first, at most RECENT_ITEMS
    seen: tuple[str, ...] = ()  # distinct, oldest first, at most SEEN_ITEMS (oldest dropped first)
    events: int = 0
    last_seen: int = 0  # event time (ms) of the newest event


@dataclass(frozen=True)
class ItemFeatures:
    """An item's online features."""

    item_id: str
    counts: dict[str, int] = field(default_factory=dict)  # per event type
    total: int = 0
    covis: dict[str, int] = field(default_factory=dict)  # co-visited item -> count, top-K


@dataclass(frozen=True)
class Popular:
    """The most interacted-with items, ``(item_id, total)`` by total descending."""

    items: tuple[tuple[str, int], ...] = ()
