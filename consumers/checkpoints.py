"""Checkpoints in DynamoDB: per application and shard, the last sequence number fully processed.

A checkpoint is written only after every processor has made the batch durable, so restarting
from it redelivers at most the batch in hand (at-least-once); the features' high-water marks
turn that redelivery into an exactly-once effect.

The checkpoint shares its item with the shard's lease (``consumers.leases``): the embedded
runner writes it through ``LeaseTable.checkpoint``, conditionally on still holding the lease.
This module reads it, and writes it unconditionally for tools that hold no lease.
"""

from __future__ import annotations

import time
from typing import Any

from botocore.exceptions import ClientError

from infra.errors import translate

SHARD_END = "SHARD_END"  # the checkpoint of a closed shard that was read to its end


def checkpoint_key(app_name: str, shard_id: str) -> dict[str, Any]:
    """The DynamoDB key of one application's checkpoint (and lease) item for ``shard_id``."""
    return {"pk": {"S": f"{app_name}#{shard_id}"}}


class DynamoCheckpointer:
    """Checkpoints of one application in the checkpoints table (hash key ``pk``)."""

    def __init__(self, client: Any, table: str, app_name: str) -> None:
        self._client = client
        self._table = table
        self._app = app_name

    async def get(self, shard_id: str) -> str | None:
        """The shard's checkpoint: a sequence number, ``SHARD_END``, or None if never set."""
        try:
            response = await self._client.get_item(
                TableName=self._table, Key=checkpoint_key(self._app, shard_id), ConsistentRead=True
            )
        except ClientError as exc:
            raise translate("GetItem", exc) from exc
        value = response.get("Item", {}).get("sequence_number")
        return value["S"] if value else None

    async def set(self, shard_id: str, sequence_number: str) -> None:
        """Record that every record up to ``sequence_number`` took effect (the lease's fields,
        if any, are kept)."""
        try:
            await self._client.update_item(
                TableName=self._table,
                Key=checkpoint_key(self._app, shard_id),
                UpdateExpression="SET app = :app, shard_id = :shard, sequence_number = :seq, "
                "updated_ms = :now",
                ExpressionAttributeValues={
                    ":app": {"S": self._app},
                    ":shard": {"S": shard_id},
                    ":seq": {"S": sequence_number},
                    ":now": {"N": str(int(time.time() * 1000))},
                },
            )
        except ClientError as exc:
            raise translate("UpdateItem", exc) from exc
