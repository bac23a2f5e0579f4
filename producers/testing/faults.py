"""Kinesis clients that fail on purpose: chosen entries, whole calls, and slow answers.

Emulators (moto, kinesis-mock) never answer PutRecords with a partial failure, never time out
and never drop a connection, so a producer's retry paths would go untested against them. These
wrappers sit around any Kinesis client (``FaultInjectingKinesis`` a sync one,
``AsyncFaultInjectingKinesis`` an aiobotocore one):

- entries picked by ``faults`` are answered with that ``ErrorCode`` and *not* forwarded; the
  others go to the wrapped client in one call, in their original order;
- a ``timeouts`` fraction of calls raise botocore's ``ReadTimeoutError``; a
  ``written_on_timeout`` fraction of those forwarded their entries first (the answer was lost,
  not the write), so a producer that resends them makes duplicates: delivery is at least once;
- a ``connection_errors`` fraction of calls raise ``EndpointConnectionError``, writing nothing;
- every call waits ``latency`` seconds first (with the injected ``sleep``).

Every other method is the wrapped client's. ``calls`` keeps each call's ``Records`` argument.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import EndpointConnectionError, ReadTimeoutError

THROTTLED = "ProvisionedThroughputExceededException"
INTERNAL = "InternalFailure"
ENDPOINT = "https://kinesis.fault-injection.invalid"

# Decides the fate of one entry: ``(call_number, entry) -> error code, or None to forward it``.
Faults = Callable[[int, Mapping[str, Any]], str | None]


def random_faults(rate: float, *, code: str = THROTTLED, seed: int = 0) -> Faults:
    """Fail each entry with probability ``rate``, reproducibly for a given ``seed``."""
    return mixed_faults({code: rate}, seed=seed)


def mixed_faults(rates: Mapping[str, float], *, seed: int = 0) -> Faults:
    """Fail each entry with each code's probability (``{code: rate}``, rates summing to <= 1)."""
    rng = random.Random(seed)
    table = list(rates.items())

    def faults(_call: int, _entry: Mapping[str, Any]) -> str | None:
        draw = rng.random()
        for code, rate in table:
            if draw < rate:
                return code
            draw -= rate
        return None

    return faults


def fail_calls(calls: Mapping[int, Mapping[int, str]]) -> Faults:
    """Fail by position: ``{call_number: {entry_index: code}}``, call numbers from 0."""
    seen: dict[int, int] = {}

    def faults(call: int, _entry: Mapping[str, Any]) -> str | None:
        index = seen.get(call, 0)
        seen[call] = index + 1
        return calls.get(call, {}).get(index)

    return faults


def no_faults(_call: int, _entry: Mapping[str, Any]) -> str | None:
    """Forward every entry."""
    return None


@dataclass(frozen=True)
class _Plan:
    codes: list[str | None]
    forward: list[Mapping[str, Any]]
    write: bool  # forward to the wrapped client
    error: Exception | None  # raised after writing (or instead of it)


class _FaultInjector:
    def __init__(
        self,
        inner: Any,
        faults: Faults = no_faults,
        *,
        timeouts: float = 0.0,
        written_on_timeout: float = 0.5,
        connection_errors: float = 0.0,
        latency: float = 0.0,
        seed: int = 0,
    ) -> None:
        self._inner, self._faults = inner, faults
        self._timeouts, self._written = timeouts, written_on_timeout
        self._connection_errors, self.latency = connection_errors, latency
        self._rng = random.Random(seed)
        self.calls: list[list[Mapping[str, Any]]] = []
        self.timeouts_raised = self.connection_errors_raised = 0

    def _plan(self, kwargs: Mapping[str, Any]) -> _Plan:
        entries = list(kwargs["Records"])
        call = len(self.calls)
        self.calls.append(entries)
        draw = self._rng.random()
        if draw < self._connection_errors:
            self.connection_errors_raised += 1
            return _Plan([], [], False, EndpointConnectionError(endpoint_url=ENDPOINT))
        codes = [self._faults(call, entry) for entry in entries]
        forward = [entry for entry, code in zip(entries, codes, strict=True) if code is None]
        if draw < self._connection_errors + self._timeouts:
            self.timeouts_raised += 1
            written = self._rng.random() < self._written
            return _Plan(codes, forward, written, ReadTimeoutError(endpoint_url=ENDPOINT))
        return _Plan(codes, forward, True, None)

    @staticmethod
    def _answer(plan: _Plan, answers: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
        forwarded = iter(answers)
        records = [
            dict(next(forwarded))
            if code is None
            else {"ErrorCode": code, "ErrorMessage": "injected"}
            for code in plan.codes
        ]
        failed = sum(1 for r in records if "ErrorCode" in r)
        return {"FailedRecordCount": failed, "Records": records}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class FaultInjectingKinesis(_FaultInjector):
    """Wraps a sync (boto3) Kinesis client; see the module docstring for the faults."""

    def __init__(
        self,
        inner: Any,
        faults: Faults = no_faults,
        *,
        sleep: Callable[[float], None] = time.sleep,
        **options: Any,
    ) -> None:
        super().__init__(inner, faults, **options)
        self._sleep = sleep

    def put_records(self, **kwargs: Any) -> dict[str, Any]:
        """Like Kinesis's, with faults: one answer per entry, in order, or an exception."""
        plan = self._plan(kwargs)
        if self.latency:
            self._sleep(self.latency)
        answers: list[Mapping[str, Any]] = []
        if plan.write and plan.forward:
            answers = self._inner.put_records(**{**kwargs, "Records": plan.forward})["Records"]
        if plan.error is not None:
            raise plan.error
        return self._answer(plan, answers)


class AsyncFaultInjectingKinesis(_FaultInjector):
    """Wraps an async (aiobotocore) Kinesis client; see the module docstring for the faults."""

    def __init__(
        self,
        inner: Any,
        faults: Faults = no_faults,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        **options: Any,
    ) -> None:
        super().__init__(inner, faults, **options)
        self._sleep = sleep

    async def put_records(self, **kwargs: Any) -> dict[str, Any]:
        """Like Kinesis's, with faults: one answer per entry, in order, or an exception."""
        plan = self._plan(kwargs)
        if self.latency:
            await self._sleep(self.latency)
        answers: list[Mapping[str, Any]] = []
        if plan.write and plan.forward:
            response = await self._inner.put_records(**{**kwargs, "Records": plan.forward})
            answers = response["Records"]
        if plan.error is not None:
            raise plan.error
        return self._answer(plan, answers)
