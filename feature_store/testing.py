"""Test doubles shipped with the feature store: a DynamoDB client that throttles on demand.

Emulators never throttle, so the failure paths of the online store (and of everything above
it) are exercised by wrapping the real aiobotocore client::

    faulty = ThrottlingClient(dynamodb, fail=after_calls(50))
    store = OnlineStore(faulty, table)

The chosen calls of the chosen operations raise botocore's ``ClientError`` with code
``ProvisionedThroughputExceededException``, as the client does once its own retries are spent;
every other call and attribute goes to the wrapped client.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from typing import Any

from botocore.exceptions import ClientError

THROTTLED = "ProvisionedThroughputExceededException"
FaultPlan = Callable[[str, int], bool]  # (operation, 0-based call index of it) -> fail?


def after_calls(n: int) -> FaultPlan:
    """Fail every call of an operation from its ``n``-th on (0-based): an outage that lasts."""
    return lambda operation, index: index >= n


def at_calls(indices: Iterable[int]) -> FaultPlan:
    """Fail exactly the calls with these indices."""
    chosen = frozenset(indices)
    return lambda operation, index: index in chosen


def fraction(share: float, seed: int = 0, after: int = 0) -> FaultPlan:
    """Fail about ``share`` of the calls from the ``after``-th of each operation on; the draws
    are reproducible for a given ``seed``."""
    rng = random.Random(seed)
    return lambda operation, index: index >= after and rng.random() < share


class ThrottlingClient:
    """Wraps an aiobotocore DynamoDB client; the calls ``fail`` picks raise a throttling error.

    ``operations`` are the method names that may fail (``put_item`` and ``batch_get_item`` by
    default). ``calls`` counts the calls of each, ``failed`` lists ``(operation, index)`` of
    every call that was made to fail.
    """

    def __init__(
        self,
        client: Any,
        *,
        fail: FaultPlan,
        operations: Iterable[str] = ("put_item", "batch_get_item"),
    ) -> None:
        self._client = client
        self._fail = fail
        self._operations = frozenset(operations)
        self.calls: dict[str, int] = dict.fromkeys(self._operations, 0)
        self.failed: list[tuple[str, int]] = []

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name not in self._operations:
            return attribute

        async def call(**kwargs: Any) -> Any:
            index = self.calls[name]
            self.calls[name] += 1
            if self._fail(name, index):
                self.failed.append((name, index))
                raise ClientError(
                    {"Error": {"Code": THROTTLED, "Message": "injected throttling"}},
                    _operation_name(name),
                )
            return await attribute(**kwargs)

        return call


def _operation_name(method: str) -> str:
    """``put_item`` -> ``PutItem``, as botocore names operations in its errors."""
    return "".join(part.capitalize() for part in method.split("_"))
