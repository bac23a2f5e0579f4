"""Schemathesis over the worker's published OpenAPI document: no request the document allows
(or, in the negative run, forbids) gets a server error, and every answer fits its schema.

The worker runs over loopback in a thread of its own with its own event loop (its DynamoDB
client and locks belong to that loop), on the embedded moto holding the rows of
``test_worker.ROWS``, with a process-memory cache. Generation is derandomised (the same cases
every run) and bounded per operation and mode.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import response_schema_conformance

from feature_store.online import OnlineStore
from infra.clients import async_client
from infra.settings import Settings
from models.cache import InMemoryCache
from models.catalog import ItemCatalog
from models.recommender import Recommender
from models.worker import create_app, running
from tests.integration.test_worker import ROWS

MAX_EXAMPLES = 50  # per GET operation and generation mode
GET_ROUTES = {
    "/recommendations/{user_id}",
    "/items/trending",
    "/items/popular",
    "/pipeline",  # 404 here: no pipeline status is wired (its answer has no parameters)
    "/users/{user_id}/features",
    "/healthz",
    "/metrics",
}
STARTUP_TIMEOUT_SECONDS = 30.0
CATALOG = ItemCatalog({"c": frozenset({"Drama"}), "d": frozenset({"Comedy"})})


@pytest.fixture
def worker_url(applied: Settings) -> Iterator[str]:
    """The worker over a real OnlineStore (``ROWS``) served on 127.0.0.1 from its own thread."""
    started = threading.Event()
    stop: list[asyncio.Event] = []
    url: list[str] = []
    failure: list[BaseException] = []
    loop = asyncio.new_event_loop()

    async def serve() -> None:
        async with async_client("dynamodb", applied) as dynamodb:
            store = OnlineStore(dynamodb, applied.features_table)
            for row in ROWS:
                assert await store.write_row(row)
            recommender = Recommender(store, CATALOG)
            app = create_app(recommender, InMemoryCache(), ttl_seconds=60, store=store)
            async with running(app) as base:
                stop.append(asyncio.Event())
                url.append(base)
                started.set()
                await stop[0].wait()

    def main() -> None:
        try:
            loop.run_until_complete(serve())
        except BaseException as exc:  # reported by the fixture, not lost in the thread
            failure.append(exc)
        finally:
            started.set()

    thread = threading.Thread(target=main, name="worker", daemon=True)
    thread.start()
    assert started.wait(STARTUP_TIMEOUT_SECONDS), "the worker did not start"
    if failure:
        raise failure[0]
    try:
        yield url[0]
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(timeout=STARTUP_TIMEOUT_SECONDS)
        loop.close()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_get_request_gets_a_server_error_or_an_answer_off_its_schema(
    worker_url: str, mode: GenerationMode
) -> None:
    schema = schemathesis.openapi.from_url(f"{worker_url}/openapi.json").include(method="GET")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} == GET_ROUTES  # a new route is fuzzed too: add it here
    if mode is GenerationMode.NEGATIVE:  # a route without parameters has nothing to break
        operations = [op for op in operations if op.definition.raw.get("parameters")]
    checked: dict[str, int] = {}

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=MAX_EXAMPLES,
            derandomize=True,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: schemathesis.Case) -> None:
            case.call_and_validate(
                base_url=worker_url, checks=[not_a_server_error, response_schema_conformance]
            )
            path = case.operation.path
            checked[path] = checked.get(path, 0) + 1

        call()
    assert set(checked) == {op.path for op in operations}  # every route was called
