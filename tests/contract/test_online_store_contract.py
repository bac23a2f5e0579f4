"""One contract for every online store: in memory and DynamoDB (moto) behave the same.

Missing keys, batch boundaries around BatchGetItem's 100 keys, TTL honoured at read time,
projections, conditional writes and clear errors.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from feature_store.features import (
    SESSION_GAP_MS,
    USER_TTL_MS,
    ItemFeatures,
    UserFeatures,
    item_key,
    user_key,
)
from feature_store.memory import InMemoryOnlineStore
from feature_store.online import FeatureStore, OnlineStore
from feature_store.rows import Row
from feature_store.transforms import Sequenced, fold_item, fold_user
from infra.clients import async_client
from infra.settings import Settings
from producers.events import Event

T0 = 1_700_000_000_000
MINUTE = 60_000


@pytest.fixture(params=["memory", "dynamodb"])
async def store(request: pytest.FixtureRequest) -> AsyncIterator[FeatureStore]:
    if request.param == "memory":
        yield InMemoryOnlineStore()
        return
    applied: Settings = request.getfixturevalue("applied")
    async with async_client("dynamodb", applied) as dynamodb:
        yield OnlineStore(dynamodb, applied.features_table)


def event(n: int, item: str, ts: int, user: str = "u1") -> Sequenced:
    e = Event(event_id=f"e{n}", user_id=user, item_id=item, event_type="view", timestamp=ts)
    return Sequenced(e, "shard-0", str(n))


async def put_item(store: FeatureStore, item_id: str, events: int, ts: int = T0) -> None:
    stamps = [event(n, item_id, ts).event for n in range(events)]
    assert await store.write_row(
        Row(item_key(item_id), fold_item(ItemFeatures(item_id), stamps, []))
    )


async def put_user(store: FeatureStore, user_id: str, events: list[Sequenced]) -> None:
    assert await store.write_row(Row(user_key(user_id), fold_user(UserFeatures(user_id), events)))


@pytest.mark.parametrize("count", [99, 100, 101])
async def test_reads_are_aligned_with_the_keys_across_batch_boundaries(
    store: FeatureStore, count: int
) -> None:
    for n in range(count):
        await put_item(store, f"i{n}", events=n % 5 + 1)
    keys = [item_key("absent"), *(item_key(f"i{n}") for n in range(count)), item_key("i0")]
    values = await store.read(keys, ["item.interactions_all"], now_ms=T0)
    assert len(values) == count + 2
    assert values[0] is None  # a miss
    assert [v and v["item.interactions_all"] for v in values[1:-1]] == [
        n % 5 + 1 for n in range(count)
    ]
    assert values[-1] == values[1]  # a key asked twice


async def test_a_missing_key_is_none_and_the_others_still_answer(store: FeatureStore) -> None:
    await put_item(store, "a", 3)
    assert await store.read([item_key("nope")], ["item.interactions_all"], now_ms=T0) == [None]
    rows = await store.read_rows([item_key("nope"), item_key("a")])
    assert rows[0] is None and rows[1] is not None and rows[1].version == 1


async def test_only_the_asked_features_of_the_keys_entity_are_returned(
    store: FeatureStore,
) -> None:
    await put_item(store, "a", 2, ts=T0)
    await put_user(store, "u1", [event(1, "a", T0), event(2, "b", T0 + MINUTE)])
    asked = ["item.interactions_1h", "user.event_counts_1h", "user.recent_items"]
    item, user = await store.read([item_key("a"), user_key("u1")], asked, now_ms=T0 + MINUTE)
    assert item == {"item.interactions_1h": 2}
    assert user is not None and set(user) == {"user.event_counts_1h", "user.recent_items"}
    assert user["user.event_counts_1h"] == {"view": 2}
    assert [r["item_id"] for r in user["user.recent_items"]] == ["b", "a"]


async def test_windows_move_with_the_read_time(store: FeatureStore) -> None:
    await put_item(store, "a", 4, ts=T0)
    hour = 60 * MINUTE
    features = ["item.interactions_1h", "item.interactions_24h", "item.interactions_all"]
    (soon,) = await store.read([item_key("a")], features, now_ms=T0 + MINUTE)
    (later,) = await store.read([item_key("a")], features, now_ms=T0 + 3 * hour)
    assert soon is not None and later is not None
    assert (soon["item.interactions_1h"], soon["item.interactions_24h"]) == (4, 4)
    assert (later["item.interactions_1h"], later["item.interactions_24h"]) == (0, 4)
    assert later["item.interactions_all"] == 4


async def test_expired_values_read_as_missing_whatever_dynamodb_deleted(
    store: FeatureStore,
) -> None:
    await put_user(store, "u1", [event(1, "a", T0)])
    features = ["user.last_seen", "user.session"]
    (fresh,) = await store.read([user_key("u1")], features, now_ms=T0 + MINUTE)
    assert fresh is not None and fresh["user.session"]["length"] == 1
    (idle,) = await store.read([user_key("u1")], features, now_ms=T0 + SESSION_GAP_MS + MINUTE)
    assert idle == {"user.last_seen": T0, "user.session": None}  # the session's TTL passed
    (gone,) = await store.read([user_key("u1")], features, now_ms=T0 + USER_TTL_MS + 2_000)
    assert gone is None  # the row's TTL passed: a miss, though the row is still stored
    assert (await store.read_rows([user_key("u1")]))[0] is not None


async def test_writes_are_conditional_on_the_version(store: FeatureStore) -> None:
    row = Row(item_key("a"), ItemFeatures("a", total=1))
    assert await store.write_row(row)
    assert not await store.write_row(row)  # version 0 again: the row exists now
    (stored,) = await store.read_rows([item_key("a")])
    assert stored is not None and stored.version == 1
    assert await store.write_row(Row(item_key("a"), ItemFeatures("a", total=2), version=1))
    assert not await store.write_row(Row(item_key("a"), ItemFeatures("a", total=3), version=1))
    (stored,) = await store.read_rows([item_key("a")])
    assert stored is not None and stored.features == ItemFeatures("a", total=2)


async def test_unknown_features_and_keys_are_named(store: FeatureStore) -> None:
    with pytest.raises(KeyError, match=r"item\.nope"):
        await store.read([item_key("a")], ["item.nope"])
    with pytest.raises(ValueError, match="'thing#1'"):
        await store.read(["thing#1"], ["item.interactions_all"])


async def test_reads_project_only_the_attributes_the_features_need(store: FeatureStore) -> None:
    await put_item(store, "a", 2)
    found = await store.fetch([item_key("a")], ["pk", "kind", "item_id", "total"], False)
    features = found[item_key("a")].features
    assert isinstance(features, ItemFeatures) and features.total == 2
    if isinstance(store, OnlineStore):  # DynamoDB read only what was asked (memory: no cost)
        assert features.tiles == {} and found[item_key("a")].marks == {}


async def test_user_and_items_read_the_asked_attributes_as_the_whole_rows_have_them(
    store: FeatureStore,
) -> None:
    await put_user(store, "u1", [event(1, "a", T0), event(2, "b", T0 + 1)])
    await put_item(store, "a", 3)
    whole, projected = await store.user("u1"), await store.user("u1", ["recent", "seen"])
    assert whole is not None and projected is not None
    assert (projected.recent, projected.seen) == (whole.recent, whole.seen)
    (item, missing) = await store.items(["a", "nope"], ["covis"])
    assert missing is None and item is not None and item.item_id == "a"
    assert item.covis == (await store.items(["a"]))[0].covis  # type: ignore[union-attr]
    if isinstance(store, OnlineStore):  # only what was asked was read
        assert item.total == 0 and projected.counts == {}
    await put_user(store, "u2", [event(3, "c", T0)])
    (u2, nobody, u1) = await store.users(["u2", "nobody", "u1"], ["recent"])
    assert nobody is None and u1 is not None and u2 is not None
    assert (u1.recent, [r.item_id for r in u2.recent]) == (whole.recent, ["c"])
