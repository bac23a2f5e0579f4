"""A Kinesis client whose chosen GetRecords calls fail, and which notes when each was made.

Emulators never throttle and never expire an iterator early, so the runner's back-off and
recovery paths are exercised by wrapping the real aiobotocore client (every other method is
the wrapped client's).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

THROTTLED = "ProvisionedThroughputExceededException"
EXPIRED = "ExpiredIteratorException"


class FailingGetRecords:
    """Wraps an aiobotocore Kinesis client; GetRecords call ``i`` (0-based) raises
    ``fail[i]`` as botocore would. ``calls`` holds each call's monotonic start time."""

    def __init__(self, client: Any, fail: Mapping[int, str]) -> None:
        self._client = client
        self._fail = dict(fail)
        self.calls: list[float] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    async def get_records(self, **kwargs: Any) -> Any:
        """GetRecords, or the injected error for this call."""
        index = len(self.calls)
        self.calls.append(time.monotonic())
        code = self._fail.get(index)
        if code is not None:
            raise ClientError({"Error": {"Code": code, "Message": "injected"}}, "GetRecords")
        return await self._client.get_records(**kwargs)
