"""What a request may ask to leave out or keep: seen items, items by id, genres."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from models.catalog import ItemCatalog


@dataclass(frozen=True)
class Filters:
    """Constraints on the recommended items.

    ``include_genres``: only items with at least one of these genres (items of unknown genres
    are left out); ``exclude_genres``: no item with any of them (unknown genres pass).
    """

    exclude_seen: bool = True
    exclude_items: frozenset[str] = field(default_factory=frozenset)
    include_genres: frozenset[str] = field(default_factory=frozenset)
    exclude_genres: frozenset[str] = field(default_factory=frozenset)

    def allows(self, item_id: str, catalog: ItemCatalog) -> bool:
        """Whether ``item_id`` passes the id and genre filters (seen items are handled apart)."""
        if item_id in self.exclude_items:
            return False
        if not (self.include_genres or self.exclude_genres):
            return True
        genres = catalog.genres_of(item_id)
        if self.include_genres and not genres & self.include_genres:
            return False
        return not genres & self.exclude_genres

    @property
    def is_default(self) -> bool:
        """No constraint beyond leaving seen items out."""
        return self == Filters()

    def fingerprint(self) -> str:
        """A short stable digest of the filters (part of the cache key)."""
        canonical = "|".join(
            [
                str(self.exclude_seen),
                ",".join(sorted(self.exclude_items)),
                ",".join(sorted(self.include_genres)),
                ",".join(sorted(self.exclude_genres)),
            ]
        )
        return hashlib.blake2b(canonical.encode(), digest_size=8).hexdigest()
