"""Checkpoints in DynamoDB: per application and shard, the last sequence number fully processed.

A checkpoint is written only after every processor has made the batch durable, so restarting
from it redelivers at most the batch in hand (at-least-once); the features' high-water marks
turn that redelivery into an exactly-once effect.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from infra.errors import translate

SHARD_END = "SHARD_END"  # the checkpoint of a closed shard that was read to its end


class DynamoCheckpointer:
    """Checkpoints of one application in the checkpoints table (hash key ``pk``)."""

    def __init__(self, client: Any, table: str, app_name: str) -> None:
        self._client = client
        self._table = table
        self._app = app_name

    def _key(self, shard_id: str) -> dict[str, Any]:
        return {"pk": {"S": f"{self._app}#{shard_id}"}}

    async def get(self, shard_id: str) -> str | None:
        """The shard's checkpoint: a sequence number, ``SHARD_END``, or None if never set."""
        try:
            response = await self._client.get_item(
                TableName=self._table, Key=self._key(shard_id), ConsistentRead=True
            )
        except ClientError as exc:
            raise translate("GetItem", exc) from exc
        item = response.get("Item")
        return item["sequence_number"]["S"] if item else None

    async def set(self, shard_id: str, sequence_number: str) -> None:
        """Record that every record up to ``sequence_number`` took effect."""
        item = {
            **self._key(shard_id),
            "app": {"S": self._app},
            "shard_id": {"S": shard_id},
            "sequence_number": {"S": sequence_number},
            "updated_ms": {"N": str(int(time.time() * 1000))},
        }
        try:
            await self._client.put_item(TableName=self._table, Item=item)
        except ClientError as exc:
            raise translate("PutItem", exc) from exc
