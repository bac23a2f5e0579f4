"""Synthetic interaction events: deterministic, time ordered, with a realistic shape.

Item popularity follows a Zipf-like law, so a few items are seen by many users and item
co-occurrence exists. A user's clicks, cart adds and purchases mostly follow items they viewed
recently, as in a shopping funnel; ratings carry a value from 0.5 to 5.0.
"""

from __future__ import annotations

import itertools
import random

from producers.events import Event, EventType

DEFAULT_START_MS = 1_700_000_000_000  # 2023-11-14T22:13:20Z: fixed, so output never depends on now
ZIPF_EXPONENT = 1.1
FUNNEL_PROBABILITY = 0.7  # a click/cart/purchase follows one of the user's recent views
RECENT_VIEWS = 5
MAX_GAP_MS = 5_000
_TYPES = (
    (EventType.VIEW, 0.55),
    (EventType.CLICK, 0.2),
    (EventType.ADD_TO_CART, 0.1),
    (EventType.PURCHASE, 0.05),
    (EventType.RATING, 0.1),
)
_FOLLOWS_VIEW = frozenset({EventType.CLICK, EventType.ADD_TO_CART, EventType.PURCHASE})


def synthetic_events(
    n: int,
    *,
    users: int = 50,
    items: int = 200,
    seed: int = 0,
    start_ms: int = DEFAULT_START_MS,
) -> list[Event]:
    """``n`` events of ``users`` users on ``items`` items, the same for the same arguments.

    Timestamps start at ``start_ms`` and strictly increase (so also per user); event ids are
    ``syn-<seed>-<index>``, unique within one seed.
    """
    rng = random.Random(seed)
    popularity = list(itertools.accumulate(1 / rank**ZIPF_EXPONENT for rank in range(1, items + 1)))
    kinds, kind_weights = zip(*_TYPES, strict=True)
    recent: dict[int, list[str]] = {}
    timestamp = start_ms
    events = []
    for index in range(n):
        user = rng.randrange(users)
        kind = rng.choices(kinds, weights=kind_weights)[0]
        viewed = recent.setdefault(user, [])
        if kind in _FOLLOWS_VIEW and viewed and rng.random() < FUNNEL_PROBABILITY:
            item = rng.choice(viewed)
        else:
            item = f"i{rng.choices(range(items), cum_weights=popularity)[0]}"
        if kind is EventType.VIEW:
            viewed[:] = [*viewed[-(RECENT_VIEWS - 1) :], item]
        events.append(
            Event(
                event_id=f"syn-{seed}-{index}",
                user_id=f"u{user}",
                item_id=item,
                event_type=kind,
                timestamp=timestamp,
                value=rng.randint(1, 10) / 2 if kind is EventType.RATING else None,
                session_id=f"u{user}-s{timestamp // 1_800_000}",
            )
        )
        timestamp += rng.randint(1, MAX_GAP_MS)
    return events
