"""``POST /events`` on moto's Kinesis: every status, and what reaches the stream."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr

from feature_store.online import OnlineStore
from infra.clients import async_client, client
from infra.settings import Settings
from models.cache import InMemoryCache
from models.ingest import MAX_BODY_BYTES, IngestConfig, ThreadedPublisher
from models.recommender import Recommender
from models.worker import create_app
from producers.events import Event
from producers.producer import EventProducer, FailedEvent
from streamrec.wiring import recommender_app
from tests.streams import read_stream

KEYS = frozenset({"key-one", "key-two"})
T0 = 1_714_550_400_000  # 2024-05-01T08:00:00Z


def _raw(n: int, **fields: Any) -> dict[str, Any]:
    return {
        "event_id": f"e{n}",
        "user_id": f"u{n % 3}",
        "item_id": f"i{n}",
        "event_type": "view",
        "timestamp": T0 + n,
        **fields,
    }


def _app(ingest: IngestConfig | None) -> FastAPI:
    unused = Recommender(OnlineStore(None, "unused"))  # these tests never ask for recommendations
    return create_app(unused, InMemoryCache(), ttl_seconds=60, ingest=ingest)


def _http(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://worker")


@pytest.fixture
def kinesis(applied: Settings) -> Any:
    """A boto3 Kinesis client on the embedded stack."""
    return client("kinesis", applied)


@pytest.fixture
async def http(applied: Settings, kinesis: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the worker whose ingest publishes to the test's stream."""
    publisher = ThreadedPublisher(EventProducer(kinesis, applied.stream_name))
    async with _http(_app(IngestConfig(publisher, KEYS))) as http:
        yield http
    assert await publisher.aclose() == []


class RecordingPublisher:
    """Takes every event and remembers it: for the requests that must never publish."""

    def __init__(self) -> None:
        self.published: list[Event] = []

    async def publish(self, events: Sequence[Event]) -> list[FailedEvent]:
        self.published.extend(events)
        return []


@pytest.fixture
def recorder() -> RecordingPublisher:
    """A publisher double that writes nowhere."""
    return RecordingPublisher()


@pytest.fixture
async def offline_http(recorder: RecordingPublisher) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the worker whose ingest publishes to ``recorder`` (no AWS needed)."""
    async with _http(_app(IngestConfig(recorder, KEYS))) as http:
        yield http


async def _post(
    http: httpx.AsyncClient, body: Any, key: str | bytes | None = "key-one"
) -> httpx.Response:
    headers = {"X-API-Key": key} if key is not None else {}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await http.post("/events", content=content, headers=headers)


def _ids(events: Sequence[Event]) -> list[str]:
    return sorted(e.event_id for e in events)


async def test_a_valid_batch_is_202_and_every_event_is_in_the_stream(
    http: httpx.AsyncClient, kinesis: Any, applied: Settings
) -> None:
    response = await _post(http, [_raw(n) for n in range(5)], key="key-two")
    assert response.status_code == 202
    assert response.json() == {
        "accepted": ["e0", "e1", "e2", "e3", "e4"],
        "rejected": [],
        "failed": [],
    }
    assert _ids(read_stream(kinesis, applied.stream_name)) == ["e0", "e1", "e2", "e3", "e4"]


async def test_one_event_as_an_object_is_accepted(
    http: httpx.AsyncClient, kinesis: Any, applied: Settings
) -> None:
    response = await _post(http, _raw(7, event_type="rating", value=4.5))
    assert (response.status_code, response.json()["accepted"]) == (202, ["e7"])
    (event,) = read_stream(kinesis, applied.stream_name)
    assert event == Event.parse(_raw(7, event_type="rating", value=4.5))


async def test_invalid_events_are_named_by_index_and_field_and_the_valid_ones_sent(
    http: httpx.AsyncClient, kinesis: Any, applied: Settings
) -> None:
    missing_item = _raw(3)
    del missing_item["item_id"]
    batch = [
        _raw(0),
        _raw(1, timestamp=1_714_550_400),  # seconds, not milliseconds
        _raw(2),
        missing_item,
        _raw(4, colour="red"),
        "not an event",
        _raw(0),  # the same event_id again
        _raw(7, event_type="teleport"),
    ]
    response = await _post(http, batch)
    assert response.status_code == 400
    body = response.json()
    assert body["accepted"] == ["e0", "e2"]
    assert body["failed"] == []
    rejected = [(r["index"], r["event_id"], r["field"]) for r in body["rejected"]]
    assert rejected == [
        (1, "e1", "timestamp"),
        (3, "e3", "item_id"),
        (4, "e4", "colour"),
        (5, None, "<event>"),
        (6, "e0", "event_id"),
        (7, "e7", "event_type"),
    ]
    reasons = {r["index"]: r["reason"] for r in body["rejected"]}
    assert "milliseconds" in reasons[1]
    assert reasons[3] == "is required"
    assert "teleport" in reasons[7]
    assert _ids(read_stream(kinesis, applied.stream_name)) == ["e0", "e2"]


async def test_malformed_json_is_400_and_says_so(
    offline_http: httpx.AsyncClient, recorder: RecordingPublisher
) -> None:
    for body in (b'[{"event_id": "e1",', b"\xff\xfe", b"[" * 100_000):
        response = await _post(offline_http, body)
        assert response.status_code == 400, body[:10]
        assert response.json()["detail"].startswith("malformed JSON"), body[:10]
    assert recorder.published == []


async def test_a_body_that_is_not_an_event_or_a_batch_is_400(
    offline_http: httpx.AsyncClient,
) -> None:
    for body, says in ((42, "got a number"), ("e1", "got a string"), ([], "empty")):
        response = await _post(offline_http, body)
        assert response.status_code == 400
        assert says in response.json()["detail"]


async def test_a_missing_or_wrong_key_is_401_and_keys_are_never_logged(
    offline_http: httpx.AsyncClient, recorder: RecordingPublisher, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for key in (None, "", "key-three", "KEY-ONE", "key-one ", "clé".encode()):
        response = await _post(offline_http, [_raw(1)], key=key)
        assert response.status_code == 401, key
        assert response.json() == {"detail": "missing or invalid X-API-Key header"}
    assert recorder.published == []
    response = await _post(offline_http, [_raw(1)], key="key-two")
    assert response.status_code == 202
    assert not any(k in caplog.text for k in KEYS)


async def test_a_body_over_the_limit_is_413_from_content_length(
    offline_http: httpx.AsyncClient,
) -> None:
    body = b" " * (MAX_BODY_BYTES + 1)
    response = await _post(offline_http, body)
    assert response.request.headers["content-length"] == str(MAX_BODY_BYTES + 1)
    assert response.status_code == 413
    assert str(MAX_BODY_BYTES) in response.json()["detail"]


async def test_a_chunked_body_over_the_limit_is_413_while_reading(
    offline_http: httpx.AsyncClient,
) -> None:
    sent = 0

    async def chunks() -> AsyncIterator[bytes]:
        nonlocal sent
        for _ in range(8):
            sent += 1
            yield b" " * (1024 * 1024)

    headers = {"X-API-Key": "key-one"}
    response = await offline_http.post("/events", content=chunks(), headers=headers)
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["detail"] == f"the body is over the limit of {MAX_BODY_BYTES} bytes"
    assert sent < 8, "the server stopped reading at the limit"


async def test_a_batch_of_501_is_413_and_500_is_accepted(
    http: httpx.AsyncClient, kinesis: Any, applied: Settings
) -> None:
    response = await _post(http, [_raw(n) for n in range(501)])
    assert response.status_code == 413
    assert (
        response.json()["detail"] == "a batch holds at most 500 events, this one has 501: split it"
    )
    response = await _post(http, [_raw(n) for n in range(500)])
    assert response.status_code == 202
    assert len(response.json()["accepted"]) == 500
    assert len(read_stream(kinesis, applied.stream_name)) == 500


async def test_without_a_configured_key_ingest_is_503(applied: Settings, kinesis: Any) -> None:
    publisher = ThreadedPublisher(EventProducer(kinesis, applied.stream_name))
    for app in (_app(None), _app(IngestConfig(publisher, frozenset()))):
        async with _http(app) as http:
            response = await _post(http, [_raw(1)])
        assert response.status_code == 503
        assert "STREAMREC_INGEST_API_KEYS" in response.json()["detail"]
    assert read_stream(kinesis, applied.stream_name) == []


class HalfFailingPublisher:
    """Reports every other event as throttled, as a stream at its limit does."""

    def __init__(self) -> None:
        self.published: list[Event] = []

    async def publish(self, events: Sequence[Event]) -> list[FailedEvent]:
        self.published.extend(events)
        return [
            FailedEvent(e.event_id, "ProvisionedThroughputExceededException", "Rate exceeded")
            for e in events[1::2]
        ]


async def test_events_the_producer_could_not_write_are_503_with_retry_after() -> None:
    publisher = HalfFailingPublisher()
    async with _http(_app(IngestConfig(publisher, KEYS))) as http:
        response = await _post(http, [_raw(0), _raw(1), {"event_id": "bad"}, _raw(3)])
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    body = response.json()
    assert body["accepted"] == ["e0", "e3"]
    assert [(f["event_id"], f["error_code"]) for f in body["failed"]] == [
        ("e1", "ProvisionedThroughputExceededException"),
    ]
    assert [r["index"] for r in body["rejected"]] == [2]
    assert _ids(publisher.published) == ["e0", "e1", "e3"]


class DownKinesis:
    """A Kinesis client whose every call fails, after botocore's own retries."""

    def put_records(self, **kwargs: Any) -> dict[str, Any]:
        raise ConnectionError("connection refused")


async def test_a_producer_that_raises_reports_every_event_failed() -> None:
    # the producer retries a failed call (connection errors are transient): at once, here
    publisher = ThreadedPublisher(EventProducer(DownKinesis(), "events", base_delay=0.0))
    async with _http(_app(IngestConfig(publisher, KEYS))) as http:
        response = await _post(http, [_raw(0), _raw(1)])
    assert response.status_code == 503
    body = response.json()
    assert body["accepted"] == []
    assert [(f["event_id"], f["error_code"]) for f in body["failed"]] == [
        ("e0", "ConnectionError"),
        ("e1", "ConnectionError"),
    ]


async def test_the_served_app_ingests_into_the_settings_stream_when_keys_are_set(
    applied: Settings, kinesis: Any
) -> None:
    enabled = applied.model_copy(update={"ingest_api_keys": SecretStr("key-a,key-b")})
    async with async_client("dynamodb", applied) as dynamodb:
        online = OnlineStore(dynamodb, applied.features_table)
        async with recommender_app(enabled, online) as app, _http(app) as http:
            assert (await _post(http, [_raw(1), _raw(2)], key="key-b")).status_code == 202
        async with recommender_app(applied, online) as app, _http(app) as http:
            assert (await _post(http, [_raw(3)], key="key-b")).status_code == 503
    assert _ids(read_stream(kinesis, applied.stream_name)) == ["e1", "e2"]
