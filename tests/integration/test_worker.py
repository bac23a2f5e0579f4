"""The recommender worker over moto's DynamoDB: features in, recommendations out over HTTP."""

from __future__ import annotations

import asyncio
import time
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
    TrendCandidate,
    UserFeatures,
    item_key,
    user_key,
)
from feature_store.online import FeatureStore, OnlineStore
from feature_store.rows import Row
from infra.clients import async_client
from infra.local_redis import redis_server, unique_prefix
from infra.settings import Settings
from models.cache import CacheError, InMemoryCache, Lookup, RedisCache
from models.catalog import ItemCatalog
from models.recommender import Recommender
from models.worker import create_app, running

# moto's first reads in a busy test session can take longer than the shipped 0.25 s deadline,
# which would serve popular items flagged degraded: tests not about the deadline wait longer
DEADLINE = 5.0

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
    return create_app(
        Recommender(store), InMemoryCache(), ttl_seconds=60, deadline_seconds=DEADLINE
    )


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
    """A cache whose backend is down; ``gets`` counts the lookups tried."""

    def __init__(self) -> None:
        self.gets = 0

    async def get(self, user_id: str, variant: str | int) -> Lookup:
        self.gets += 1
        raise CacheError("down")

    async def set(self, user_id: str, variant: str | int, recs: Any, ttl: float, g: int) -> None:
        raise CacheError("down")

    async def invalidate(self, user_ids: Collection[str]) -> None:
        raise CacheError("down")

    async def close(self) -> None:
        """Nothing to release."""


@pytest.mark.parametrize("params", [{"k": 3}, {"k": 3, "unknown": "x"}])
async def test_a_failing_cache_degrades_to_uncached_answers_asking_it_once(
    store: OnlineStore, params: dict[str, Any]
) -> None:
    cache = BrokenCache()
    app = create_app(Recommender(store), cache, ttl_seconds=60, deadline_seconds=DEADLINE)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as http:
        for asked in range(1, 3):  # the hit path's requests, and one it leaves to the route
            body = (await http.get("/recommendations/u1", params=params)).json()
            assert body["cached"] is False
            assert body["degraded_reasons"] == ["cache unavailable: computed without it"]
            assert [r["item_id"] for r in body["recommendations"]] == ["c", "d", "e"]
            assert cache.gets == asked  # not read again by the route after the hit path failed
        metrics = (await http.get("/metrics")).text
    assert 'streamrec_cache_lookups_total{result="error"} 2.0' in metrics


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


CATALOG = ItemCatalog({"c": frozenset({"Drama"}), "d": frozenset({"Comedy"})})


@pytest.fixture
async def filtering(store: OnlineStore) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the worker over ``store`` whose catalog knows the genres of c and d."""
    app = create_app(
        Recommender(store, CATALOG),
        InMemoryCache(),
        ttl_seconds=60,
        store=store,
        deadline_seconds=DEADLINE,
    )
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://worker"
    ) as http:
        yield http


async def ids_of(http: httpx.AsyncClient, **params: Any) -> list[str]:
    response = await http.get("/recommendations/u1", params={"k": 3, **params})
    assert response.status_code == 200, response.text
    return [r["item_id"] for r in response.json()["recommendations"]]


async def test_filters_by_item_and_genre_and_seen_items(filtering: httpx.AsyncClient) -> None:
    assert await ids_of(filtering) == ["c", "d", "e"]
    assert await ids_of(filtering, exclude_items=["c", "e"]) == ["d", "f"]
    assert await ids_of(filtering, include_genres="Drama") == ["c"]
    assert await ids_of(filtering, exclude_genres=["Drama", "Horror"]) == ["d", "e", "f"]
    assert "x" in await ids_of(filtering, exclude_seen="false", k=5)


async def test_filtered_answers_are_cached_apart(filtering: httpx.AsyncClient) -> None:
    plain = (await filtering.get("/recommendations/u1", params={"k": 3})).json()
    filtered = (
        await filtering.get("/recommendations/u1", params={"k": 3, "exclude_items": "c"})
    ).json()
    assert plain["cached"] is False
    assert filtered["cached"] is False
    assert [r["item_id"] for r in filtered["recommendations"]] == ["d", "e", "f"]


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/recommendations/u1", {"k": "0"}, "k"),
        ("/recommendations/u1", {"exclude_seen": "maybe"}, "exclude_seen"),
        ("/recommendations/u1", {"exclude_items": "no spaces"}, "exclude_items"),
        ("/recommendations/u1", {"exclude_items": [f"i{n}" for n in range(101)]}, "exclude_items"),
        ("/recommendations/" + "u" * 129, {}, "user_id"),
        ("/recommendations/u%20v", {}, "user_id"),
        ("/items/trending", {"k": "101"}, "k"),
        ("/users/u%7Cv/features", {}, "user_id"),
    ],
)
async def test_invalid_parameters_get_422_naming_the_field(
    filtering: httpx.AsyncClient, path: str, params: dict[str, Any], field: str
) -> None:
    response = await filtering.get(path, params=params)
    assert response.status_code == 422
    (error,) = response.json()["detail"]
    assert field in error["loc"]


async def test_user_features_are_served_and_unknown_or_expired_users_get_404(
    store: OnlineStore, filtering: httpx.AsyncClient
) -> None:
    now = int(time.time() * 1000)
    recent = (RecentItem("a", "click", now, "shardId-000000000000", "9"),)
    assert await store.write_row(
        Row(user_key("fresh"), UserFeatures("fresh", recent, ("a",), 1, now, {"click": 1}))
    )
    body = (await filtering.get("/users/fresh/features")).json()
    assert body["user_id"] == "fresh"
    assert [r["item_id"] for r in body["features"]["user.recent_items"]] == ["a"]
    assert body["features"]["user.last_seen"] == now
    assert body["features"]["user.event_counts_all"] == {"click": 1}
    for user_id in ("stranger", "u1"):  # u1's row is past its TTL (its events are from 1970)
        missing = await filtering.get(f"/users/{user_id}/features")
        assert missing.status_code == 404
        assert user_id in missing.json()["detail"]


async def test_trending_lists_items_busier_than_their_usual_hour(applied: Settings) -> None:
    now = int(time.time() * 1000)
    bucket = now // 300_000
    popular = Popular(
        (("a", 90),),
        (
            TrendCandidate("hot", {bucket: 12}, 168, now),
            TrendCandidate("warm", {bucket: 3}, 168, now),
            TrendCandidate("usual", {bucket: 1}, 168, now),
        ),
    )
    async with async_client("dynamodb", applied) as dynamodb:
        online = OnlineStore(dynamodb, applied.features_table)
        assert await online.write_row(Row(POPULAR_KEY, popular))
        app = create_app(
            Recommender(online), InMemoryCache(), ttl_seconds=60, deadline_seconds=DEADLINE
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as http:
            body = (await http.get("/items/trending", params={"k": 5})).json()
    # (12 + 1) / (168 / 168 + 1) = 6.5, (3 + 1) / 2 = 2; the usual item scores 1: not trending
    assert body == {
        "items": [{"item_id": "hot", "score": 6.5}, {"item_id": "warm", "score": 2.0}],
        "degraded": False,
        "degraded_reasons": [],
    }


async def test_metrics_expose_request_latency_and_cache_lookups(client: httpx.AsyncClient) -> None:
    for _ in range(2):
        await client.get("/recommendations/u1", params={"k": 3})
    text = (await client.get("/metrics")).text
    assert 'streamrec_cache_lookups_total{result="hit"} 1.0' in text
    assert 'streamrec_cache_lookups_total{result="miss"} 1.0' in text
    assert (
        'streamrec_request_seconds_count{route="/recommendations/{user_id}",status="200"} 2.0'
        in text
    )
    # the one computed answer read its user row once
    assert 'streamrec_feature_reads_total{kind="user"} 1.0' in text
    assert 'streamrec_feature_keys_read_total{kind="user"} 1.0' in text
    assert "streamrec_item_rows_kept 0.0" in text  # this Recommender keeps none


class SlowUsers(FeatureStore):
    """The online store with user reads delayed (a DynamoDB slower than the worker's deadline)."""

    def __init__(self, store: OnlineStore, delay: float, fail: bool = False) -> None:
        self._store, self._delay, self._fail = store, delay, fail
        self.slow = False

    async def fetch(self, keys: Any, attributes: Any = None, consistent: bool = False) -> Any:
        if self.slow and any(k.startswith("user#") for k in keys):
            if self._fail:
                raise ConnectionError("dynamodb unreachable")
            await asyncio.sleep(self._delay)
        return await self._store.fetch(keys, attributes, consistent)

    async def write_row(self, row: Row) -> bool:
        return await self._store.write_row(row)


@pytest.mark.parametrize("fail", [False, True])
async def test_a_slow_or_failing_store_gets_popular_items_flagged_degraded(
    store: OnlineStore, fail: bool
) -> None:
    slow = SlowUsers(store, delay=5.0, fail=fail)
    app = create_app(Recommender(slow), InMemoryCache(), ttl_seconds=60, deadline_seconds=0.2)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://worker") as http:
        await http.get("/recommendations/other", params={"k": 2})  # reads the global row once
        slow.slow = True
        started = time.monotonic()
        response = await http.get("/recommendations/u1", params={"k": 3})
        elapsed = time.monotonic() - started
        again = (await http.get("/recommendations/u1", params={"k": 3})).json()
    assert response.status_code == 200
    body = response.json()
    assert body["degraded"] is True
    assert "popular" in body["degraded_reasons"][0]
    assert [r["item_id"] for r in body["recommendations"]] == ["x", "a", "e"]
    assert elapsed < 2.0  # the deadline, not the store, decided
    assert again["cached"] is False  # a degraded answer is not cached
    assert again["degraded"] is True


async def test_with_redis_stopped_requests_succeed_and_say_so(store: OnlineStore) -> None:
    with redis_server() as server:
        cache = RedisCache(server.url, prefix=unique_prefix("recs"))
        app = create_app(Recommender(store), cache, ttl_seconds=60, deadline_seconds=DEADLINE)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as http:
            first = (await http.get("/recommendations/u1", params={"k": 3})).json()
            second = (await http.get("/recommendations/u1", params={"k": 3})).json()
            server.stop()
            down = await http.get("/recommendations/u1", params={"k": 3})
        await cache.close()
    assert (first["cached"], second["cached"]) == (False, True)
    assert down.status_code == 200
    body = down.json()
    assert body["cached"] is False
    assert body["degraded"] is True
    assert body["degraded_reasons"] == ["cache unavailable: computed without it"]
    assert [r["item_id"] for r in body["recommendations"]] == ["c", "d", "e"]


async def test_with_redis_paused_one_request_waits_its_timeout_and_the_next_do_not(
    store: OnlineStore,
) -> None:
    timeout = 1.0
    with redis_server() as server:
        cache = RedisCache(server.url, prefix=unique_prefix("recs"), timeout_seconds=timeout)
        app = create_app(Recommender(store), cache, ttl_seconds=60, deadline_seconds=DEADLINE)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as http:
            await http.get("/recommendations/u1", params={"k": 3})  # cached now
            server.pause()  # as a hung or partitioned Redis: nothing comes back
            try:
                started = time.monotonic()
                answers = [await http.get("/recommendations/u1", params={"k": 3}) for _ in range(5)]
                elapsed = time.monotonic() - started
            finally:
                server.resume()
        await cache.close()
    for answer in answers:
        assert answer.status_code == 200
        assert answer.json()["degraded_reasons"] == ["cache unavailable: computed without it"]
    # the first waited out the timeout; the rest were computed without trying Redis (each
    # waiting it out too would take 5 s; redis-py's own default, 5 s each, 25 s)
    assert timeout <= elapsed < 4 * timeout


async def test_popular_lists_the_most_interacted_items(client: httpx.AsyncClient) -> None:
    body = (await client.get("/items/popular", params={"k": 2})).json()
    assert body["items"] == [{"item_id": "x", "score": 100.0}, {"item_id": "a", "score": 90.0}]
    assert body["degraded"] is False
