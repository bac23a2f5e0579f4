"""The cache-hit path reads a request's parameters as the route does, or leaves it to the route."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import httpx
import pytest

from feature_store.memory import InMemoryOnlineStore
from models.cache import InMemoryCache, Lookup
from models.filters import Filters
from models.hit_path import _CACHED_BODY, Asked, answer_body, parse, variant
from models.recommender import Recommender
from models.worker import create_app
from tests.integration.test_worker import CATALOG, ROWS  # u1 saw a then b; c, d co-visited


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"", Asked("u1", 10, Filters())),
        (b"k=3", Asked("u1", 3, Filters())),
        (b"k=100&exclude_seen=false", Asked("u1", 100, Filters(exclude_seen=False))),
        (b"exclude_seen=1", Asked("u1", 10, Filters())),
        (
            b"exclude_items=c&exclude_items=e&include_genres=Drama&exclude_genres=Sci-Fi",
            Asked(
                "u1",
                10,
                Filters(True, frozenset("ce"), frozenset({"Drama"}), frozenset({"Sci-Fi"})),
            ),
        ),
        (
            b"include_genres=Film%20Noir",
            Asked("u1", 10, Filters(include_genres=frozenset({"Film Noir"}))),
        ),
    ],
)
def test_requests_it_understands(query: bytes, expected: Asked) -> None:
    asked = parse("/recommendations/u1", query)
    assert asked is not None
    assert asked.user_id == expected.user_id
    assert asked.k == expected.k
    assert variant(asked.k, asked.filters, "") == variant(expected.k, expected.filters, "")


@pytest.mark.parametrize(
    ("path", "query"),
    [
        ("/recommendations/u1", b"k=0"),
        ("/recommendations/u1", b"k=101"),
        ("/recommendations/u1", b"k=ten"),
        ("/recommendations/u1", b"k=%EF%BC%93"),  # a full-width digit: int() takes it, not FastAPI
        ("/recommendations/u1", b"k=3&k=4"),  # repeated scalar: the route's own rule applies
        ("/recommendations/u1", b"exclude_seen=maybe"),
        ("/recommendations/u1", b"exclude_seen=True"),  # other spellings: the route decides
        ("/recommendations/u1", b"exclude_items=no%20spaces"),
        ("/recommendations/u1", b"&".join(b"exclude_items=i%d" % n for n in range(101))),
        ("/recommendations/u1", b"page=2"),  # unknown: the route ignores it, we don't guess
        ("/recommendations/u1", b"k"),  # not name=value
        ("/recommendations/" + "u" * 129, b""),
        ("/recommendations/u v", b""),
        ("/recommendations/u1\n", b""),
        ("/recommendations/", b""),
        ("/recommendations/u1/more", b""),
        ("/items/trending", b""),
    ],
)
def test_requests_it_leaves_to_the_route(path: str, query: bytes) -> None:
    assert parse(path, query) is None


def test_variants_differ_by_k_filters_and_model() -> None:
    base = variant(10, Filters(), "")
    assert base == "10"
    assert variant(10, Filters(), "itemknn-3") != base
    assert variant(10, Filters(exclude_seen=False), "") != base
    assert variant(5, Filters(), "") != base


class CountingCache(InMemoryCache):
    """A process-memory cache that counts its reads."""

    def __init__(self) -> None:
        super().__init__()
        self.gets = 0

    async def get(self, user_id: str, variant: str | int) -> Lookup:
        self.gets += 1
        return await super().get(user_id, variant)


async def worker(cache: InMemoryCache) -> httpx.AsyncClient:
    store = InMemoryOnlineStore()
    for row in ROWS:
        assert await store.write_row(row)
    app = create_app(Recommender(store, CATALOG), cache, ttl_seconds=60, store=store)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://worker")


QUERIES: Sequence[dict[str, Any]] = [
    {},
    {"k": 3},
    {"k": 5, "exclude_seen": "false"},
    {"exclude_items": ["c", "e"]},
    {"include_genres": "Drama", "k": 2},
    {"exclude_genres": ["Drama", "Horror"]},
    {"exclude_seen": "True"},  # left to the route: cached and answered all the same
    {"page": "2"},
]


@pytest.mark.parametrize("params", QUERIES)
async def test_a_cached_answer_equals_the_computed_one_and_reads_the_cache_once(
    params: dict[str, Any],
) -> None:
    cache = CountingCache()
    async with await worker(cache) as http:
        first = await http.get("/recommendations/u1", params=params)
        reads_to_compute = cache.gets
        second = await http.get("/recommendations/u1", params=params)
        reads_to_hit = cache.gets - reads_to_compute
    assert first.status_code == second.status_code == 200
    computed, cached = first.json(), second.json()
    assert computed["cached"] is False
    assert cached["cached"] is True
    assert {**computed, "cached": True} == cached
    assert second.headers["content-type"] == "application/json"
    assert reads_to_compute == 1  # a miss is looked up once: by the hit path or by the route
    assert reads_to_hit == 1


async def test_a_computed_answer_carries_the_request_id_and_is_timed_under_the_route() -> None:
    async with await worker(CountingCache()) as http:
        computed = await http.get("/recommendations/u1", headers={"X-Request-ID": "req-7"})
        metrics = (await http.get("/metrics")).text
    assert computed.json()["cached"] is False
    assert computed.headers["x-request-id"] == "req-7"
    assert computed.headers["content-type"] == "application/json"
    route = 'route="/recommendations/{user_id}",status="200"'
    assert f"streamrec_request_seconds_count{{{route}}} 1.0" in metrics


async def test_an_invalidated_user_is_computed_again() -> None:
    cache = CountingCache()
    async with await worker(cache) as http:
        await http.get("/recommendations/u1")
        await cache.invalidate(["u1"])
        again = (await http.get("/recommendations/u1")).json()
    assert again["cached"] is False


async def test_hits_are_timed_under_the_route_and_counted() -> None:
    cache = CountingCache()
    async with await worker(cache) as http:
        for _ in range(3):
            await http.get("/recommendations/u1")
        metrics = (await http.get("/metrics")).text
    assert 'streamrec_cache_lookups_total{result="hit"} 2.0' in metrics
    assert 'streamrec_cache_lookups_total{result="miss"} 1.0' in metrics
    route = 'route="/recommendations/{user_id}",status="200"'
    assert f"streamrec_request_seconds_count{{{route}}} 3.0" in metrics


def test_the_held_answer_is_written_as_answer_body_writes_it() -> None:
    recs = [{"item_id": "c", "score": 1.0, "reason": "seen with a"}]
    held = json.dumps(recs, separators=(",", ":")).encode()
    spliced = _CACHED_BODY % (b'"u1"', 3, held)
    assert spliced == answer_body("u1", 3, recs, cached=True, reasons=[])
