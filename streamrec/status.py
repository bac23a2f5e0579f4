"""``streamrec status``: per shard, owner, checkpoint and its age, lag and throughput.

Reads the embedded runner's leases in the checkpoints table (``STREAMREC_APP_NAME``) and the
stream's shards; see ``consumers.status`` for where the figures come from. The KCL runtime
keeps its leases in tables of its own, which this command does not read.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from botocore.exceptions import ClientError

from consumers.leases import LeaseTable
from consumers.status import ShardStatus, read_status, status_table
from infra.clients import async_client
from infra.errors import ServiceError, error_code
from infra.settings import Settings

NOT_FOUND = "ResourceNotFoundException"


def add_status_parser(sub: Any) -> None:
    """Register ``streamrec status [--json]``."""
    status = sub.add_parser(
        "status",
        help="per-shard owner, checkpoint age, lag and throughput of the embedded consumers",
    )
    status.add_argument(
        "--json", action="store_true", help="one JSON object: the stream and its shards"
    )
    status.set_defaults(func=_status)


def _status(args: argparse.Namespace, settings: Settings) -> int:
    return run_status(settings, as_json=args.json)


def run_status(settings: Settings, *, as_json: bool = False) -> int:
    """Print the status; 0, or 2 when the stream or the checkpoints table does not exist."""
    try:
        rows = asyncio.run(_read(settings))
    except (ClientError, ServiceError) as exc:
        code = exc.code if isinstance(exc, ServiceError) else error_code(exc)
        if code != NOT_FOUND:
            raise
        print(
            f"streamrec status: the stream {settings.stream_name!r} or the table "
            f"{settings.checkpoints_table!r} does not exist ({exc}); run streamrec infra apply",
            file=sys.stderr,
        )
        return 2
    if as_json:
        print(json.dumps({"stream": settings.stream_name, "shards": [r.to_json() for r in rows]}))
    else:
        print(status_table(rows))
    return 0


async def _read(settings: Settings) -> list[ShardStatus]:
    async with (
        async_client("kinesis", settings) as kinesis,
        async_client("dynamodb", settings) as dynamodb,
    ):
        # no worker id: this table object only reads
        leases = LeaseTable(dynamodb, settings.checkpoints_table, settings.app_name, "")
        return await read_status(kinesis, leases, settings.stream_name, int(time.time() * 1000))
