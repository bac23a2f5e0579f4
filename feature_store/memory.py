"""The in-memory online store: the same items, versions and projections as DynamoDB, in a dict.

For unit tests of what sits on the store, for the processor benchmark (CPU cost without I/O)
and for point-in-time training sets (features as of a label time, rebuilt in memory). It stores
rows as values (no serialisation: rows are immutable), so TTL and versions behave as on the
table, and the processor's CPU cost can be measured without DynamoDB's encoding; the contract
suite runs over both backends.
"""

from __future__ import annotations

from collections.abc import Sequence

from feature_store.online import FeatureStore
from feature_store.rows import Row


class InMemoryOnlineStore(FeatureStore):
    """Feature rows in a dict; not shared between processes. ``writes`` counts accepted writes."""

    def __init__(self) -> None:
        self._rows: dict[str, Row] = {}
        self.writes = 0

    async def fetch(
        self, keys: Sequence[str], attributes: Sequence[str] | None, consistent: bool
    ) -> dict[str, Row]:
        """The stored rows of the keys that exist (every attribute: nothing to save here)."""
        rows = self._rows
        return {key: rows[key] for key in keys if key in rows}

    async def write_row(self, row: Row) -> bool:
        """Conditional on the version, as ``OnlineStore.write_row``."""
        stored = self._rows.get(row.key)
        if (0 if stored is None else stored.version) != row.version:
            return False
        self._rows[row.key] = Row(row.key, row.features, row.version + 1, row.marks)
        self.writes += 1
        return True

    async def write_rows(self, rows: Sequence[Row], concurrency: int = 16) -> list[bool]:
        """Each row's ``write_row`` in turn: nothing here waits, so nothing gains from tasks."""
        return [await self.write_row(row) for row in rows]

    def rows(self) -> dict[str, Row]:
        """Every stored row by key (a copy of the index; the rows themselves are shared)."""
        return dict(self._rows)
