"""Test doubles shipped with the SDK, for its own tests and for applications that use it.

- ``FaultInjectingKinesis`` / ``AsyncFaultInjectingKinesis``: wrap a Kinesis client to fail
  chosen entries with any ErrorCode, time out or drop calls, and add latency;
- ``InMemoryKinesis``: a recording in-memory stream with real MD5 routing and PutRecords' limits
  (``AsyncClient`` makes it, or any sync client, awaitable);
- ``ManualClock``: time that moves only when told or waited on, for the producers' ``clock``.
"""

from producers.testing.clock import ManualClock
from producers.testing.faults import (
    INTERNAL,
    THROTTLED,
    AsyncFaultInjectingKinesis,
    FaultInjectingKinesis,
    Faults,
    fail_calls,
    mixed_faults,
    no_faults,
    random_faults,
)
from producers.testing.memory import AsyncClient, InMemoryKinesis, StoredRecord

__all__ = [
    "INTERNAL",
    "THROTTLED",
    "AsyncClient",
    "AsyncFaultInjectingKinesis",
    "FaultInjectingKinesis",
    "Faults",
    "InMemoryKinesis",
    "ManualClock",
    "StoredRecord",
    "fail_calls",
    "mixed_faults",
    "no_faults",
    "random_faults",
]
