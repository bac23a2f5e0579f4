"""The producer SDK's errors, and how a failed PutRecords call is classified.

Errors::

    ProducerError
    ├── Backpressure       the buffer is full; .retry_after says how long to wait
    ├── ProducerClosed     put after close (also a RuntimeError)
    ├── RecordTooLarge     a record over Kinesis's 1 MiB (also a ValueError)
    ├── DeliveryFailed     one event was not written: the exception of its put future
    └── ProduceError       leaving a producer's ``with`` block with events not written

``producers.events.InvalidEvent`` is raised at ``put`` for an event that breaks the contract.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    HTTPClientError,
    ReadTimeoutError,
)

if TYPE_CHECKING:
    from producers.records import FailedEvent, ProduceResult

# Entry codes worth another attempt; any other ErrorCode is final.
RETRYABLE_CODES = frozenset({"ProvisionedThroughputExceededException", "InternalFailure"})
# Whole-call error codes worth another attempt (throttling, KMS throttling, 5xx).
RETRYABLE_CALL_CODES = RETRYABLE_CODES | {
    "LimitExceededException",
    "ThrottlingException",
    "KMSThrottlingException",
    "ServiceUnavailable",
    "InternalFailureException",
}


class ProducerError(Exception):
    """Root of the producer SDK's errors."""


class Backpressure(ProducerError):
    """The buffer is full. Wait ``retry_after`` seconds (an estimate) and put again.

    ``accepted`` counts the events of a ``put_many`` that were buffered before it filled up.
    """

    def __init__(self, retry_after: float, accepted: int = 0) -> None:
        super().__init__(f"producer buffer full: retry in {retry_after:.3f} s")
        self.retry_after = retry_after
        self.accepted = accepted


class ProducerClosed(ProducerError, RuntimeError):
    """The producer was closed (or its sender stopped): it takes no more events."""


class RecordTooLarge(ProducerError, ValueError):
    """A record over Kinesis's limit of 1 MiB, data plus partition key."""


class DeliveryFailed(ProducerError):
    """One event was not written. ``failure`` names it, with the error code of its last try."""

    def __init__(self, failure: FailedEvent) -> None:
        super().__init__(f"{failure.event_id}: {failure.error_code}: {failure.message}")
        self.failure = failure
        self.event_id = failure.event_id
        self.error_code = failure.error_code


class ProduceError(ProducerError):
    """Leaving ``with`` a producer while events could not be written. Has ``result``."""

    def __init__(self, result: ProduceResult) -> None:
        super().__init__(f"{len(result.failed)} events not written, first: {result.failed[0]}")
        self.result = result


@dataclass(frozen=True)
class CallFailure:
    """A PutRecords call that raised: its code, whether to try again, and whether its records
    may have been written anyway (a timeout after sending: a resend may duplicate them)."""

    code: str
    message: str
    retryable: bool
    maybe_written: bool


def classify(exc: Exception) -> CallFailure:
    """How the producers treat an exception raised by ``put_records``."""
    message = str(exc)
    if isinstance(exc, ClientError):
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        retryable = code in RETRYABLE_CALL_CODES or status >= 500
        return CallFailure(code, message, retryable, maybe_written=status >= 500)
    name = type(exc).__name__
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError):
        return CallFailure(name, message, retryable=True, maybe_written=False)
    if isinstance(exc, ReadTimeoutError | ConnectionClosedError | HTTPClientError):
        return CallFailure(name, message, retryable=True, maybe_written=True)
    if isinstance(exc, TimeoutError | ConnectionError):
        return CallFailure(name, message, retryable=True, maybe_written=True)
    return CallFailure(name, message, retryable=False, maybe_written=False)
