"""What the worker knows of items beyond their online features: genres (and titles when known).

Filters by genre and content-based candidates need an item's genres; the online item rows hold
counts, not metadata. The catalog is built from events (their ``context["genres"]`` or
``context["category"]``, ``|``-separated, as the feature processor reads them), so it comes from
the same lake the models train on; an item the catalog does not know has no genres.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from producers.events import Event


def event_genres(event: Event) -> frozenset[str]:
    """The genres an event carries, as the features read them."""
    context = event.context or {}
    raw = context.get("genres") or context.get("category") or ""
    return frozenset(g for g in str(raw).split("|") if g)


@dataclass(frozen=True)
class ItemCatalog:
    """Items' genres and titles; unknown items have none."""

    genres: Mapping[str, frozenset[str]] = field(default_factory=dict)
    titles: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_events(cls, events: Iterable[Event]) -> ItemCatalog:
        """Each item's genres as its newest event carrying any says."""
        genres: dict[str, frozenset[str]] = {}
        for event in events:
            found = event_genres(event)
            if found:
                genres[event.item_id] = found
        return cls(genres)

    def genres_of(self, item_id: str) -> frozenset[str]:
        """The item's genres (empty when unknown)."""
        return self.genres.get(item_id, frozenset())

    def __len__(self) -> int:
        return len(self.genres)
