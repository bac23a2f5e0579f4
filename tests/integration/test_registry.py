"""The model registry on moto's S3: versions, the promotion rule, and reload under load."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from feature_store.features import POPULAR_KEY, ItemFeatures, Popular, item_key, user_key
from feature_store.online import OnlineStore
from feature_store.rows import Row
from infra.clients import async_client
from infra.settings import Settings
from models.cache import InMemoryCache
from models.recommender import Recommender
from models.registry import ModelRegistry, ModelVersion, RegistryError
from models.reload import ModelReloader
from models.worker import create_app
from tests.integration.test_worker import USER

CONCURRENCY = 16
REQUESTS_PER_CLIENT = 25


@pytest.fixture
async def s3(applied: Settings) -> AsyncIterator[Any]:
    async with async_client("s3", applied) as client:
        yield client


@pytest.fixture
def registry(s3: Any, applied: Settings) -> ModelRegistry:
    return ModelRegistry(s3, applied.bucket, applied.models_prefix)


async def test_publish_then_read_back_every_field(registry: ModelRegistry) -> None:
    published = await registry.publish(
        "itemknn", b"artifact-1", {"ndcg@10": 0.05}, {"k": 50}, (1_000, 2_000), 42
    )
    again = await registry.version("itemknn", published.version)
    assert again == published
    assert (again.data_from_ms, again.data_to_ms, again.events, again.size) == (
        1_000,
        2_000,
        42,
        10,
    )
    assert await registry.artifact(again) == b"artifact-1"
    assert await registry.current("itemknn") is None  # published is not promoted
    assert await registry.versions("itemknn") == [published.version]


async def test_the_first_version_is_promoted_and_a_worse_one_refused(
    registry: ModelRegistry,
) -> None:
    first = await registry.publish("ease", b"1", {"ndcg@10": 0.050})
    promotion = await registry.promote(first, margin=0.01)
    assert promotion.promoted
    assert (await registry.current("ease")) == first

    worse = await registry.publish("ease", b"2", {"ndcg@10": 0.049})
    refused = await registry.promote(worse, margin=0.01)
    assert not refused.promoted
    assert "does not beat" in refused.reason
    within_margin = await registry.publish("ease", b"3", {"ndcg@10": 0.0504})  # +0.8% < 1%
    assert not (await registry.promote(within_margin, margin=0.01)).promoted
    assert (await registry.current("ease")) == first

    better = await registry.publish("ease", b"4", {"ndcg@10": 0.0506})  # +1.2%
    assert (await registry.promote(better, margin=0.01)).promoted
    assert (await registry.current("ease")) == better
    assert await registry.versions("ease") == sorted(
        v.version for v in (first, worse, within_margin, better)
    )


async def test_a_version_without_the_metric_cannot_be_promoted(registry: ModelRegistry) -> None:
    version = await registry.publish("ease", b"1", {"hr@10": 0.1})
    with pytest.raises(RegistryError, match="no 'ndcg@10' metric"):
        await registry.promote(version)


async def test_a_corrupted_artifact_is_refused(
    registry: ModelRegistry, s3: Any, applied: Settings
) -> None:
    version = await registry.publish("ease", b"good", {"ndcg@10": 0.1})
    key = f"{applied.models_prefix}ease/versions/{version.version}/artifact.npz"
    await s3.put_object(Bucket=applied.bucket, Key=key, Body=b"evil")
    with pytest.raises(RegistryError, match="does not match its sha256"):
        await registry.artifact(version)
    with pytest.raises(RegistryError, match="has no version"):
        await registry.version("ease", "v0-missing")


def neighbours_artifact(neighbours: dict[str, list[tuple[str, float]]]) -> bytes:
    return json.dumps(neighbours).encode()


async def test_reload_under_load_swaps_the_model_with_no_failed_request(
    registry: ModelRegistry, applied: Settings
) -> None:
    async with async_client("dynamodb", applied) as dynamodb:
        store = OnlineStore(dynamodb, applied.features_table)
        for row in (
            Row(user_key("u1"), USER),
            Row(item_key("a"), ItemFeatures("a", covis={"c": 3})),
            Row(POPULAR_KEY, Popular((("e", 50),))),
        ):
            assert await store.write_row(row)
        recommender = Recommender(store)

        async def install(version: ModelVersion, artifact: bytes) -> None:
            table = {i: [tuple(p) for p in ps] for i, ps in json.loads(artifact).items()}
            recommender.use(table)

        reloader = ModelReloader(registry, "itemknn", install, interval=0.05)
        old = await registry.publish(
            "itemknn", neighbours_artifact({"a": [("old-n", 1.0)]}), {"ndcg@10": 0.05}
        )
        assert (await registry.promote(old)).promoted
        assert await reloader.check()
        # no cache: every request goes through the recommender and sees the model of its time
        app = create_app(recommender, InMemoryCache(max_entries=1), ttl_seconds=0.001)
        transport = httpx.ASGITransport(app=app)
        statuses: list[int] = []
        seen: list[set[str]] = []
        stop = asyncio.Event()
        polling = asyncio.create_task(reloader.run(stop))

        async def client_loop(http: httpx.AsyncClient) -> None:
            for _ in range(REQUESTS_PER_CLIENT):
                response = await http.get("/recommendations/u1", params={"k": 5})
                statuses.append(response.status_code)
                seen.append({r["item_id"] for r in response.json()["recommendations"]})

        async with httpx.AsyncClient(transport=transport, base_url="http://worker") as http:
            load = [asyncio.create_task(client_loop(http)) for _ in range(CONCURRENCY)]
            await asyncio.sleep(0)
            new = await registry.publish(
                "itemknn", neighbours_artifact({"a": [("new-n", 1.0)]}), {"ndcg@10": 0.06}
            )
            assert (await registry.promote(new)).promoted
            await asyncio.gather(*load)
            last = (await http.get("/recommendations/u1", params={"k": 5})).json()
        stop.set()
        await polling
    assert statuses == [200] * CONCURRENCY * REQUESTS_PER_CLIENT
    assert reloader.version == new.version
    assert reloader.failures == 0
    assert any("old-n" in s for s in seen)
    reasons = {r["item_id"]: r["reason"] for r in last["recommendations"]}
    assert reasons["new-n"] == "similar to a"
    assert "old-n" not in reasons


async def test_a_version_that_fails_to_load_leaves_the_old_one_serving(
    registry: ModelRegistry,
) -> None:
    installed: list[str] = []

    async def install(version: ModelVersion, artifact: bytes) -> None:
        if artifact == b"broken":
            raise ValueError("not an artifact")
        installed.append(version.version)

    reloader = ModelReloader(registry, "ease", install)
    good = await registry.publish("ease", b"good", {"ndcg@10": 0.05})
    await registry.promote(good)
    assert await reloader.check()
    broken = await registry.publish("ease", b"broken", {"ndcg@10": 0.07})
    await registry.promote(broken)
    assert not await reloader.check()
    assert (reloader.version, reloader.failures, installed) == (good.version, 1, [good.version])
