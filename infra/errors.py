"""The root of streamrec's errors. Adapters translate botocore's ClientError codes once, here.

    StreamrecError
    ├── ServiceError          an AWS call failed for good
    │   └── ThrottledError    retries could not get under the limits
    └── ...                   each package adds its own below

The event contract (``producers``) sits below infra and depends on nothing of ours, so its
``InvalidEvent`` is a plain ``ValueError`` naming the bad field.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

THROTTLING_CODES = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "SlowDown",
    }
)


class StreamrecError(Exception):
    """Base of every error streamrec raises on purpose."""


class ServiceError(StreamrecError):
    """An AWS call failed after the client's retries. ``code`` is AWS's error code."""

    def __init__(self, operation: str, code: str, message: str) -> None:
        super().__init__(f"{operation} failed: {code}: {message}")
        self.operation = operation
        self.code = code


class ThrottledError(ServiceError):
    """An AWS call was still throttled after the client's retries."""


def error_code(exc: ClientError) -> str:
    """AWS's error code of a ClientError."""
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def translate(operation: str, exc: ClientError) -> ServiceError:
    """Our error for a botocore ClientError."""
    code = error_code(exc)
    message = str(exc.response.get("Error", {}).get("Message", ""))
    cls = ThrottledError if code in THROTTLING_CODES else ServiceError
    return cls(operation, code, message)
