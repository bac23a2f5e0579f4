"""HTTP ingest on the worker: ``POST /events`` puts one event or a batch on the stream.

    POST /events    X-API-Key: <key>    body: one event (a JSON object) or a batch (an array)

Checked in this order, each answer ``{"detail": "..."}``:

    503  ingest is disabled: no API key is configured
    401  the X-API-Key header is missing or matches no configured key
    413  the body is over ``max_body_bytes`` (from Content-Length, and again while reading it,
         before parsing), or the batch holds more than ``max_batch_events`` events
    400  the body is not JSON, or is neither an object nor a non-empty array

Then every event is validated on its own and the valid ones are published, even when others
were rejected. The answer is sent only once the publisher returned, so an id in ``accepted`` is
in Kinesis. Body ``{"accepted": [ids], "rejected": [{index, event_id, field, reason}],
"failed": [{event_id, error_code, message}]}``, status:

    202  every event valid and written
    400  some events rejected; the accepted ones are written
    503  some valid events could not be written (``failed``; Retry-After): send those again
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from botocore.exceptions import ClientError
from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from infra.errors import error_code
from producers.events import Event, InvalidEvent
from producers.producer import EventProducer, FailedEvent

log = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
MAX_BATCH_EVENTS = 500  # one PutRecords call
MAX_BODY_BYTES = 5 * 1024 * 1024  # 500 events of the contract's 8 KiB fit with room to spare
RETRY_AFTER_SECONDS = 1
DISABLED = "HTTP ingest is disabled: no API key is configured (set STREAMREC_INGEST_API_KEYS)"


class EventPublisher(Protocol):
    """Puts validated events on the stream and waits until they are there."""

    async def publish(self, events: Sequence[Event]) -> list[FailedEvent]:
        """Write ``events``; return those not written, by event_id with the error code.

        When this returns, every event not in the result is in the stream. Delivery failures are
        returned, never raised.
        """
        ...


class ThreadedPublisher:
    """An ``EventPublisher`` over the sync ``EventProducer``: ``put_many`` + ``flush`` in a thread.

    One publish at a time holds the producer (a thread lock, held even if the awaiting request
    is cancelled), so each ``flush`` result is exactly the events of that publish. When the
    producer raises (the whole call failed after botocore's retries), every event of the publish
    is reported failed with the exception's code; the producer keeps the unsent records and may
    still deliver them with a later flush, so a client's resend can make a duplicate event_id.
    """

    def __init__(self, producer: EventProducer) -> None:
        self._producer = producer
        self._lock = threading.Lock()

    async def publish(self, events: Sequence[Event]) -> list[FailedEvent]:
        """See ``EventPublisher.publish``."""
        if not events:
            return []
        return await asyncio.to_thread(self._publish, list(events))

    async def aclose(self) -> list[FailedEvent]:
        """Deliver anything still buffered and close the producer; returns what failed."""
        return await asyncio.to_thread(self._close)

    def _publish(self, events: list[Event]) -> list[FailedEvent]:
        ids = {e.event_id for e in events}
        with self._lock:
            try:
                self._producer.put_many(events)
                result = self._producer.flush()
            except Exception as exc:
                code = error_code(exc) if isinstance(exc, ClientError) else type(exc).__name__
                log.warning("publishing %d events failed: %s", len(events), code, exc_info=True)
                return [FailedEvent(e.event_id, code, str(exc)) for e in events]
        return [f for f in result.failed if f.event_id in ids]

    def _close(self) -> list[FailedEvent]:
        with self._lock:
            return self._producer.close().failed


@dataclass(frozen=True)
class IngestConfig:
    """What ``POST /events`` needs: where events go, who may send them, and the limits."""

    publisher: EventPublisher
    api_keys: frozenset[str]
    max_body_bytes: int = MAX_BODY_BYTES
    max_batch_events: int = MAX_BATCH_EVENTS


class Rejected(BaseModel):
    """An event of the request that broke the contract; ``index`` is its place in the batch."""

    index: int
    event_id: str | None
    field: str
    reason: str


class Failed(BaseModel):
    """A valid event the stream did not take; send it again."""

    event_id: str
    error_code: str
    message: str


class IngestResponse(BaseModel):
    """The answer of ``POST /events``: ``accepted`` ids are in the stream."""

    accepted: list[str]
    rejected: list[Rejected]
    failed: list[Failed]


def validate_batch(raws: Sequence[Any]) -> tuple[list[Event], list[Rejected]]:
    """Split decoded JSON values into valid events and rejections, each in request order.

    A repeated event_id is rejected after its first occurrence: ids name events in the answer.
    """
    valid: list[Event] = []
    rejected: list[Rejected] = []
    first_index: dict[str, int] = {}
    for index, raw in enumerate(raws):
        raw_id = raw.get("event_id") if isinstance(raw, dict) else None
        event_id = raw_id if isinstance(raw_id, str) else None
        try:
            if not isinstance(raw, dict):
                raise InvalidEvent("<event>", f"expected a JSON object, got {_kind(raw)}")
            event = Event.parse(raw)
            if event.event_id in first_index:
                seen = first_index[event.event_id]
                raise InvalidEvent("event_id", f"repeats the event_id of event {seen}")
        except InvalidEvent as exc:
            rejected.append(
                Rejected(index=index, event_id=event_id, field=exc.field, reason=exc.reason)
            )
            continue
        first_index[event.event_id] = index
        valid.append(event)
    return valid, rejected


def ingest_router(config: IngestConfig | None) -> APIRouter:
    """The ``POST /events`` route; ``None`` (or no API key) answers 503, ingest disabled."""
    router = APIRouter()

    @router.post("/events", status_code=202, response_model=IngestResponse)
    async def post_events(request: Request) -> JSONResponse:
        """Validate and publish one event or a batch; see the module docstring for statuses."""
        if config is None or not config.api_keys:
            raise HTTPException(503, DISABLED)
        if not _authorised(request.headers.get(API_KEY_HEADER), config.api_keys):
            raise HTTPException(401, f"missing or invalid {API_KEY_HEADER} header")
        body = await _read_body(request, config.max_body_bytes)
        valid, rejected = validate_batch(_decode_batch(body, config.max_batch_events))
        failed = await config.publisher.publish(valid) if valid else []
        failed_ids = {f.event_id for f in failed}
        answer = IngestResponse(
            accepted=[e.event_id for e in valid if e.event_id not in failed_ids],
            rejected=rejected,
            failed=[
                Failed(event_id=f.event_id, error_code=f.error_code, message=f.message)
                for f in failed
            ],
        )
        if failed:
            log.warning("ingest: %d of %d events not written", len(failed), len(valid))
            headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
            return JSONResponse(answer.model_dump(), status_code=503, headers=headers)
        return JSONResponse(answer.model_dump(), status_code=400 if rejected else 202)

    return router


def _authorised(presented: str | None, keys: frozenset[str]) -> bool:
    if not presented:
        return False
    given = presented.encode("latin-1")  # the header's bytes as sent (ASGI decodes latin-1)
    # Compare with every key, without stopping early: the time says nothing about which matched.
    matches = [hmac.compare_digest(given, key.encode("utf-8")) for key in keys]
    return any(matches)


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not (declared.isascii() and declared.isdigit()):
            raise HTTPException(400, f"Content-Length {declared!r} is not a byte count")
        if int(declared) > limit:
            raise HTTPException(413, f"the body is {declared} bytes, at most {limit} allowed")
    # Content-Length may be absent (chunked) or wrong: count while reading, stop at the limit.
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise HTTPException(413, f"the body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _decode_batch(body: bytes, max_events: int) -> list[Any]:
    try:
        decoded = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise HTTPException(400, f"malformed JSON: {exc}") from None
    if isinstance(decoded, dict):
        return [decoded]
    if not isinstance(decoded, list):
        raise HTTPException(
            400,
            f"expected one event (a JSON object) or a batch (a JSON array), got {_kind(decoded)}",
        )
    if not decoded:
        raise HTTPException(400, "the batch is empty")
    if len(decoded) > max_events:
        raise HTTPException(
            413, f"a batch holds at most {max_events} events, this one has {len(decoded)}: split it"
        )
    return decoded


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    return names.get(type(value), "a number")
