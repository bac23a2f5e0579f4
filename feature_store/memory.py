"""The in-memory online store: the same items, versions and projections as DynamoDB, in a dict.

For unit tests of what sits on the store, for the processor benchmark (CPU cost without I/O)
and for point-in-time training sets (features as of a label time, rebuilt in memory). It stores
the encoded DynamoDB items, so decoding, TTL and projections behave exactly as they do on the
table; the contract suite runs over both backends.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from feature_store.online import FeatureStore
from feature_store.rows import Row, encode


class InMemoryOnlineStore(FeatureStore):
    """Feature rows in a dict; not shared between processes. ``writes`` counts accepted writes."""

    def __init__(self) -> None:
        self._items: dict[str, dict[str, Any]] = {}
        self.writes = 0

    async def fetch(
        self, keys: Sequence[str], attributes: Sequence[str] | None, consistent: bool
    ) -> dict[str, dict[str, Any]]:
        """The stored items of the keys that exist; copies, so callers cannot change the store."""
        wanted = None if attributes is None else set(attributes)
        found: dict[str, dict[str, Any]] = {}
        for key in dict.fromkeys(keys):
            item = self._items.get(key)
            if item is not None:
                kept = item if wanted is None else {n: v for n, v in item.items() if n in wanted}
                found[key] = copy.deepcopy(kept)
        return found

    async def write_row(self, row: Row) -> bool:
        """Conditional on the version, as ``OnlineStore.write_row``."""
        stored = self._items.get(row.key)
        stored_version = int(stored["version"]["N"]) if stored else 0
        if (stored is None) != (row.version == 0) or stored_version != row.version:
            return False
        self._items[row.key] = encode(replace(row, version=row.version + 1))
        self.writes += 1
        return True

    def keys(self) -> list[str]:
        """Every stored row key, sorted."""
        return sorted(self._items)
