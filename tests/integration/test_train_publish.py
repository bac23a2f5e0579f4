"""``streamrec train --publish`` on the embedded stack, and the worker serving what it promoted."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from feature_store.online import OnlineStore
from feature_store.transforms import Sequenced
from feature_store.updates import FeatureUpdater
from infra.clients import async_client
from infra.settings import Settings
from producers.movielens import load_movie_metadata, load_movielens
from streamrec.cli import main
from streamrec.wiring import offline_store, recommender_app
from tests.integration.test_sql import _setenv
from tests.polling import eventually

EVENTS = 3_000


async def train(
    capsys: pytest.CaptureFixture[str], *args: str, model: str = "itemknn"
) -> dict[str, Any]:
    argv = ["train", "--model", model, "--events", str(EVENTS), *args]
    assert await asyncio.to_thread(main, argv) == 0  # the command runs its own event loop
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


async def test_train_publishes_promotes_once_and_the_worker_serves_it(
    applied: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    _setenv(applied, monkeypatch)
    empty = await asyncio.to_thread(main, ["train", "--model", "itemknn", "--publish"])
    assert empty == 2
    assert "holds no events" in capsys.readouterr().err
    events = load_movielens(EVENTS)
    landed = [Sequenced(e, "shardId-000000000000", str(n)) for n, e in enumerate(events)]
    async with offline_store(applied) as offline:  # the lake holds them (and one twice)
        await offline.write_events(landed)
        await offline.write_events(landed[-1:])
    first = await train(capsys, "--publish")  # from the lake, the default source
    assert first["interactions"] == EVENTS
    assert first["registry"]["promoted"] is True
    assert first["validation"]["ndcg@10"] > 0
    again = await train(capsys, "--publish")  # the same data: not better by the margin
    assert again["registry"]["promoted"] is False
    assert "does not beat" in again["registry"]["reason"]
    content = await train(capsys, "--publish", "--source", "movielens", model="content")
    assert content["registry"]["promoted"] is True

    user = events[-1].user_id
    async with (
        async_client("dynamodb", applied) as dynamodb,
        async_client("s3", applied) as s3,
    ):
        online = OnlineStore(dynamodb, applied.features_table)
        await FeatureUpdater(online).apply(
            "replay", [Sequenced(e, "replay", str(n)) for n, e in enumerate(events)]
        )
        async with (
            recommender_app(applied, online, s3=s3) as app,
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://worker"
            ) as http,
        ):

            async def similar() -> list[str]:
                body = (await http.get(f"/recommendations/{user}", params={"k": 20})).json()
                return [r["reason"] for r in body["recommendations"] if "similar" in r["reason"]]

            await similar()  # perhaps before the model is loaded: cached without it
            reloaders = app.state.reloaders
            await eventually(
                lambda: all(r.version is not None or r.failures for r in reloaders.values()),
                timeout=60,
                what="the promoted models loaded",
            )
            assert (reloaders["itemknn"].version, reloaders["itemknn"].failures) == (
                first["registry"]["version"],
                0,
            )
            assert reloaders["content"].version == content["registry"]["version"]
            assert await similar()  # a new model version is another cache entry
            # the content model brought the catalog: genre filters know every movie's genres
            movies = load_movie_metadata()
            for genre in ("Comedy", "Horror"):
                params = {"k": 10, "include_genres": genre}
                body = (await http.get(f"/recommendations/{user}", params=params)).json()
                items = [r["item_id"] for r in body["recommendations"]]
                assert len(items) == 10, (genre, body)
                assert all(genre in movies[i].genres for i in items), (genre, items)


def test_train_needs_somewhere_to_put_the_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["train", "--model", "itemknn"]) == 2
    assert "--out FILE, --publish" in capsys.readouterr().err
