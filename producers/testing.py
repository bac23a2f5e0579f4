"""Test doubles shipped with the SDK: a Kinesis client that fails chosen PutRecords entries.

Emulators (moto, kinesis-mock) never answer a PutRecords call with a partial failure, so the
retry path of a producer would go untested against them. ``FaultInjectingKinesis`` wraps any
Kinesis client: the entries its ``faults`` function picks are answered with an ``ErrorCode`` and
are *not* forwarded; the others go to the wrapped client in one call, in their original order.
Every other method is the wrapped client's.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any

THROTTLED = "ProvisionedThroughputExceededException"

# Decides the fate of one entry: ``(call_number, entry) -> error code, or None to forward it``.
Faults = Callable[[int, Mapping[str, Any]], str | None]


def random_faults(rate: float, *, code: str = THROTTLED, seed: int = 0) -> Faults:
    """Fail each entry with probability ``rate``, reproducibly for a given ``seed``."""
    rng = random.Random(seed)
    return lambda _call, _entry: code if rng.random() < rate else None


def fail_calls(calls: Mapping[int, Mapping[int, str]]) -> Faults:
    """Fail by position: ``{call_number: {entry_index: code}}``, call numbers from 0."""
    seen: dict[int, int] = {}

    def faults(call: int, _entry: Mapping[str, Any]) -> str | None:
        index = seen.get(call, 0)
        seen[call] = index + 1
        return calls.get(call, {}).get(index)

    return faults


class FaultInjectingKinesis:
    """A Kinesis client whose ``put_records`` fails the entries ``faults`` picks.

    ``calls`` keeps the ``Records`` argument of every ``put_records`` call, for assertions.
    """

    def __init__(self, inner: Any, faults: Faults) -> None:
        self._inner = inner
        self._faults = faults
        self.calls: list[list[Mapping[str, Any]]] = []

    def put_records(self, **kwargs: Any) -> dict[str, Any]:
        """Like Kinesis's: one answer per entry, in order; picked entries carry an ErrorCode."""
        entries = list(kwargs["Records"])
        call = len(self.calls)
        self.calls.append(entries)
        codes = [self._faults(call, entry) for entry in entries]
        forward = [entry for entry, code in zip(entries, codes, strict=True) if code is None]
        answers = iter(
            self._inner.put_records(**{**kwargs, "Records": forward})["Records"] if forward else []
        )
        records = [
            next(answers) if code is None else {"ErrorCode": code, "ErrorMessage": "injected"}
            for code in codes
        ]
        failed = sum(1 for r in records if "ErrorCode" in r)
        return {"FailedRecordCount": failed, "Records": records}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)
