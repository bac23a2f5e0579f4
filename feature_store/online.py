"""The online feature store: the port (``FeatureStore``) and its DynamoDB adapter.

Two storage primitives per backend: ``fetch`` (rows by key, optionally projected) and
``write_row`` (``write_rows`` writes many; a backend may do that its own way). Everything else,
the feature reads with TTL at read time included, is written once in ``FeatureStore``;
``feature_store.memory`` is the in-memory backend, and one contract suite runs over both
(tests/contract/test_online_store_contract.py).

Writes are optimistic: a row is written only if its ``version`` is still the one that was read
(or, for a new row, if it does not exist yet). A rejected write means another writer got there
first; the caller re-reads the row and recomputes from the records above the row's marks.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from feature_store.definitions import entity_of, lookup
from feature_store.features import (
    POPULAR_KEY,
    ItemFeatures,
    Popular,
    UserFeatures,
    item_key,
    user_key,
)
from feature_store.rows import Row, decode, encode, expires_at_ms
from infra.errors import error_code, translate
from infra.tasks import gather_or_cancel

BATCH_GET_LIMIT = 100  # DynamoDB's BatchGetItem maximum
_MAX_UNPROCESSED_ROUNDS = 8
# read by every feature read: what identifies the row and dates it (its TTL is computed from
# last_seen, as the stored expires_at was)
ALWAYS_READ = ("pk", "kind", "user_id", "item_id", "last_seen")

FeatureValues = dict[str, Any]  # feature name -> value


class FeatureStore(ABC):
    """Feature rows by key. Backends implement ``fetch`` and ``write_row``; the rest is here.

    Rows are immutable values: callers never change a row they read, they write a new one.
    """

    @abstractmethod
    async def fetch(
        self, keys: Sequence[str], attributes: Sequence[str] | None, consistent: bool
    ) -> dict[str, Row]:
        """The stored rows of those ``keys`` that exist, by key. ``attributes``, when given, are
        all a caller will look at: a backend may read only those (a projection)."""

    @abstractmethod
    async def write_row(self, row: Row) -> bool:
        """Store ``row`` as version ``row.version + 1`` if the stored version is ``row.version``
        (0: the row must not exist). False, and nothing written, when another writer was first."""

    async def write_rows(self, rows: Sequence[Row], concurrency: int = 16) -> list[bool]:
        """``write_row`` of each row, at most ``concurrency`` at a time; aligned with ``rows``.
        When one raises, the others are cancelled and awaited before the error is raised, so no
        write lands after this returned or raised."""
        limit = asyncio.Semaphore(concurrency)

        async def write(row: Row) -> bool:
            async with limit:
                return await self.write_row(row)

        return await gather_or_cancel(write(row) for row in rows)

    async def read_rows(self, keys: Sequence[str]) -> list[Row | None]:
        """The whole rows of ``keys``, aligned with ``keys``; ``None`` where a row does not exist.

        Strongly consistent: rows are read to be rewritten.
        """
        found = await self.fetch(list(dict.fromkeys(keys)), None, consistent=True)
        return [found.get(k) for k in keys]

    async def read(
        self,
        keys: Sequence[str],
        features: Sequence[str],
        now_ms: int | None = None,
        *,
        consistent: bool = False,
    ) -> list[FeatureValues | None]:
        """The ``features`` of each row key, aligned with ``keys``: ``None`` for a missing or
        expired row, else ``{feature: value}`` with the asked features of the key's entity
        (a feature past its TTL is ``None``). Values are computed for ``now_ms`` (default: now).

        Only the attributes the features need are read (projections); eventually consistent
        unless ``consistent``. Raises ``KeyError`` for an unknown feature, ``ValueError`` for a
        key that names no entity.
        """
        now = int(time.time() * 1000) if now_ms is None else now_ms
        definitions = lookup(list(features))
        entities = [entity_of(k) for k in keys]
        attributes = sorted({*ALWAYS_READ, *(a for d in definitions for a in d.attributes)})
        found = await self.fetch(list(dict.fromkeys(keys)), attributes, consistent)
        result: list[FeatureValues | None] = []
        for key, entity in zip(keys, entities, strict=True):
            row = found.get(key)
            expires = None if row is None else expires_at_ms(row.features)
            if row is None or (expires is not None and expires // 1000 * 1000 < now):
                result.append(None)  # DynamoDB deletes expired rows lazily: honour TTL here
                continue
            state = row.features
            result.append({d.name: d.value(state, now) for d in definitions if d.entity == entity})
        return result

    async def user(
        self, user_id: str, attributes: Sequence[str] | None = None
    ) -> UserFeatures | None:
        """A user's features (strongly consistent), or None for a user never seen; with
        ``attributes``, only those are read (the others keep their defaults)."""
        return (await self.users([user_id], attributes))[0]

    async def users(
        self, user_ids: Sequence[str], attributes: Sequence[str] | None = None
    ) -> list[UserFeatures | None]:
        """Users' features aligned with ``user_ids`` (strongly consistent, one batch read);
        None for a user never seen; with ``attributes``, only those are read."""
        keys = [user_key(u) for u in user_ids]
        found = await self.fetch(list(dict.fromkeys(keys)), _with_keys(attributes), True)
        rows = [found.get(k) for k in keys]
        return [r.features if r and isinstance(r.features, UserFeatures) else None for r in rows]

    async def items(
        self, item_ids: Sequence[str], attributes: Sequence[str] | None = None
    ) -> list[ItemFeatures | None]:
        """Items' features aligned with ``item_ids`` (strongly consistent); None for an item
        never seen; with ``attributes``, only those are read."""
        keys = [item_key(i) for i in item_ids]
        found = await self.fetch(list(dict.fromkeys(keys)), _with_keys(attributes), True)
        rows = [found.get(k) for k in keys]
        return [r.features if r and isinstance(r.features, ItemFeatures) else None for r in rows]

    async def popular(self) -> Popular:
        """The global popularity list (empty before any event)."""
        (row,) = await self.read_rows([POPULAR_KEY])
        return row.features if row and isinstance(row.features, Popular) else Popular()


def _with_keys(attributes: Sequence[str] | None) -> list[str] | None:
    """A projection that still identifies and dates its rows (``ALWAYS_READ``)."""
    return None if attributes is None else sorted({*ALWAYS_READ, *attributes})


class OnlineStore(FeatureStore):
    """Feature rows in one DynamoDB table, through an injected aiobotocore client."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    async def fetch(
        self, keys: Sequence[str], attributes: Sequence[str] | None, consistent: bool
    ) -> dict[str, Row]:
        """BatchGetItem in chunks of 100, issued concurrently; unprocessed keys are retried."""
        unique = list(dict.fromkeys(keys))
        chunks = [unique[i : i + BATCH_GET_LIMIT] for i in range(0, len(unique), BATCH_GET_LIMIT)]
        request: dict[str, Any] = {"ConsistentRead": consistent}
        if attributes is not None:
            names = {f"#a{i}": name for i, name in enumerate(attributes)}
            request["ProjectionExpression"] = ", ".join(names)
            request["ExpressionAttributeNames"] = names
        found: dict[str, Row] = {}
        for result in await asyncio.gather(*(self._batch_get(c, request) for c in chunks)):
            found.update(result)
        return found

    async def _batch_get(self, keys: list[str], options: dict[str, Any]) -> dict[str, Row]:
        request = {self._table: {"Keys": [{"pk": {"S": k}} for k in keys], **options}}
        found: dict[str, Row] = {}
        for attempt in range(_MAX_UNPROCESSED_ROUNDS):
            try:
                response = await self._client.batch_get_item(RequestItems=request)
            except ClientError as exc:
                raise translate("BatchGetItem", exc) from exc
            for item in response.get("Responses", {}).get(self._table, []):
                row = decode(item)
                found[row.key] = row
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return found
            await asyncio.sleep(min(0.05 * 2**attempt, 1.0))  # back off before the leftovers
        raise RuntimeError(
            f"BatchGetItem left keys unprocessed after {_MAX_UNPROCESSED_ROUNDS} rounds"
        )

    async def write_row(self, row: Row) -> bool:
        """Store ``row`` as version ``row.version + 1`` if the stored version is ``row.version``.

        Returns False (and writes nothing) when another writer changed the row first.
        """
        if row.version == 0:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "version = :v",
                "ExpressionAttributeValues": {":v": {"N": str(row.version)}},
            }
        item = encode(replace(row, version=row.version + 1))
        try:
            await self._client.put_item(TableName=self._table, Item=item, **condition)
        except ClientError as exc:
            if error_code(exc) == "ConditionalCheckFailedException":
                return False
            raise translate("PutItem", exc) from exc
        return True
