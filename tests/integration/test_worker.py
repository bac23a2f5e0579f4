"""The recommender worker over moto's DynamoDB: features in, recommendations out over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from feature_store.features import (
    POPULAR_KEY,
    ItemFeatures,
    Popular,
    RecentItem,
    UserFeatures,
    item_key,
    user_key,
)
from feature_store.online import OnlineStore
from feature_store.rows import Row
from infra.clients import async_client
from infra.settings import Settings
from models.cache import CacheError, InMemoryCache, Lookup
from models.recommender import Recommender
from models.worker import create_app, running

# u1 recently saw a (newest) then b; x is seen too. Expected for k=3:
#   c: 3*1 + 1*0.5 = 3.5 (mostly from a), d: 4*0.5 = 2.0 (scaled by 3.5: 1 and 0.571429),
#   then the most popular unseen item, e.
USER = UserFeatures(
    "u1",
    recent=(
        RecentItem("a", "click", 2_000, "shardId-000000000000", "2"),
        RecentItem("b", "view", 1_000, "shardId-000000000000", "1"),
    ),
    seen=("x", "b", "a"),
    events=3,
    last_seen=2_000,
)
ROWS = [
    Row(user_key("u1"), USER),
    Row(item_key("a"), ItemFeatures("a", {"click": 1}, 1, covis={"c": 3, "x": 5, "b": 1})),
    Row(item_key("b"), ItemFeatures("b", {"view": 1}, 1, covis={"d": 4, "c": 1})),
    Row(POPULAR_KEY, Popular((("x", 100), ("a", 90), ("e", 50), ("c", 40), ("f", 10)))),
]


@pytest.fixture
async def store(applied: Settings) -> AsyncIterator[OnlineStore]:
    """The online store on the embedded stack, holding ``ROWS``."""
    async with async_client("dynamodb", applied) as dynamodb:
        online = OnlineStore(dynamodb, applied.features_table)
        for row in ROWS:
            assert await online.write_row(row)
        yield online


@pytest.fixture
def app(store: OnlineStore) -> FastAPI:
    """The worker over ``store`` with a process-memory cache."""
    return create_app(Recommender(store), InMemoryCache(), ttl_seconds=60)


@pytest.fixture
async def client(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """An HTTP client calling ``app`` in process."""
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as http:
        yield http


async def test_recommends_co_visited_items_then_popular_excluding_seen(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/recommendations/u1", params={"k": 3})
    assert response.status_code == 200
    body = response.json()
    assert body["user_id"] == "u1"
    assert body["k"] == 3
    assert body["cached"] is False
    assert body["recommendations"] == [
        {"item_id": "c", "score": 1.0, "reason": "seen with a"},  # scaled by the best
        {"item_id": "d", "score": 0.571429, "reason": "seen with b"},
        {"item_id": "e", "score": 50.0, "reason": "popular"},
    ]
    returned = {r["item_id"] for r in body["recommendations"]}
    assert returned.isdisjoint(USER.seen)


async def test_second_request_is_served_from_the_cache(client: httpx.AsyncClient) -> None:
    first = (await client.get("/recommendations/u1")).json()
    second = (await client.get("/recommendations/u1")).json()
    assert first["cached"] is False
    assert second["cached"] is True
    assert second["recommendations"] == first["recommendations"]
    assert first["k"] == 10
    other_k = (await client.get("/recommendations/u1", params={"k": 2})).json()
    assert other_k["cached"] is False
    assert len(other_k["recommendations"]) == 2


async def test_unknown_user_gets_popular_items(client: httpx.AsyncClient) -> None:
    body = (await client.get("/recommendations/stranger", params={"k": 2})).json()
    assert [(r["item_id"], r["reason"]) for r in body["recommendations"]] == [
        ("x", "popular"),
        ("a", "popular"),
    ]


async def test_k_must_be_between_1_and_100(client: httpx.AsyncClient) -> None:
    for k in ("0", "101", "-1", "ten"):
        response = await client.get("/recommendations/u1", params={"k": k})
        assert response.status_code == 422, k
    for k in (1, 100):
        response = await client.get("/recommendations/u1", params={"k": k})
        assert response.status_code == 200, k
        assert 1 <= len(response.json()["recommendations"]) <= k


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


class BrokenCache:
    """A cache whose backend is down."""

    async def get(self, user_id: str, variant: str | int) -> Lookup:
        raise CacheError("down")

    async def set(self, user_id: str, variant: str | int, recs: Any, ttl: float, g: int) -> None:
        raise CacheError("down")

    async def invalidate(self, user_ids: Collection[str]) -> None:
        raise CacheError("down")

    async def close(self) -> None:
        """Nothing to release."""


async def test_a_failing_cache_degrades_to_uncached_answers(store: OnlineStore) -> None:
    app = create_app(Recommender(store), BrokenCache(), ttl_seconds=60)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as http:
        for _ in range(2):
            body = (await http.get("/recommendations/u1", params={"k": 3})).json()
            assert body["cached"] is False
            assert [r["item_id"] for r in body["recommendations"]] == ["c", "d", "e"]


async def test_running_serves_over_tcp_on_127_0_0_1_and_stops(app: FastAPI) -> None:
    async with running(app) as url:
        assert url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/healthz")).json() == {"status": "ok"}
            body = (await http.get("/recommendations/u1", params={"k": 3})).json()
            assert [r["item_id"] for r in body["recommendations"]] == ["c", "d", "e"]
    with pytest.raises(httpx.ConnectError):
        async with httpx.AsyncClient(base_url=url) as http:
            await http.get("/healthz")
