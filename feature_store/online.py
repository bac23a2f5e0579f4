"""The online feature store on DynamoDB: batched reads, conditional whole-row writes.

Writes are optimistic: a row is written only if its ``version`` is still the one that was read
(or, for a new row, if it does not exist yet). A rejected write means another writer got there
first; the caller re-reads the row and recomputes from the records above the row's marks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from botocore.exceptions import ClientError

from feature_store.features import (
    POPULAR_KEY,
    ItemFeatures,
    Popular,
    UserFeatures,
    item_key,
    user_key,
)
from feature_store.rows import Row, decode, encode
from infra.errors import error_code, translate

BATCH_GET_LIMIT = 100  # DynamoDB's BatchGetItem maximum
_MAX_UNPROCESSED_ROUNDS = 8


class OnlineStore:
    """Feature rows in one DynamoDB table, through an injected aiobotocore client."""

    def __init__(self, client: Any, table: str) -> None:
        self._client = client
        self._table = table

    async def read_rows(self, keys: Sequence[str]) -> list[Row | None]:
        """The rows of ``keys``, aligned with ``keys``; ``None`` where a row does not exist.

        Strongly consistent (rows are read to be rewritten); chunks of 100 run concurrently.
        """
        unique = list(dict.fromkeys(keys))
        chunks = [unique[i : i + BATCH_GET_LIMIT] for i in range(0, len(unique), BATCH_GET_LIMIT)]
        found: dict[str, Row] = {}
        for result in await asyncio.gather(*(self._batch_get(chunk) for chunk in chunks)):
            found.update(result)
        return [found.get(key) for key in keys]

    async def _batch_get(self, keys: list[str]) -> dict[str, Row]:
        request = {self._table: {"Keys": [{"pk": {"S": k}} for k in keys], "ConsistentRead": True}}
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

    async def user(self, user_id: str) -> UserFeatures | None:
        """A user's features, or None for a user never seen."""
        (row,) = await self.read_rows([user_key(user_id)])
        return row.features if row and isinstance(row.features, UserFeatures) else None

    async def items(self, item_ids: Sequence[str]) -> list[ItemFeatures | None]:
        """Items' features aligned with ``item_ids``; None for an item never seen."""
        rows = await self.read_rows([item_key(i) for i in item_ids])
        return [r.features if r and isinstance(r.features, ItemFeatures) else None for r in rows]

    async def popular(self) -> Popular:
        """The global popularity list (empty before any event)."""
        (row,) = await self.read_rows([POPULAR_KEY])
        return row.features if row and isinstance(row.features, Popular) else Popular()
