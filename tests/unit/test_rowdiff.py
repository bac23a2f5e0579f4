"""Comparing two tables' feature rows: what differs is reported, stream bookkeeping is not."""

from __future__ import annotations

from feature_store.features import ItemFeatures, RecentItem, UserFeatures
from feature_store.rows import Row, encode
from streamrec.rowdiff import compare, features_by_key


def item(total: int, covis: dict[str, int], version: int = 1, mark: str = "1") -> dict:
    features = ItemFeatures("i1", {"view": total}, total, covis)
    return encode(Row("item#i1", features, version, {"shard-0": mark}))


def user(sequence_number: str) -> dict:
    recent = (RecentItem("i1", "view", 5, "shard-0", sequence_number),)
    return encode(Row("user#u1", UserFeatures("u1", recent, ("i1",), 1, 5), 3, {"s": "9"}))


def test_versions_marks_and_sequence_numbers_are_not_compared() -> None:
    expected = features_by_key([item(2, {"i2": 1}), user("100")])
    actual = features_by_key([item(2, {"i2": 1}, version=7, mark="99"), user("555:3")])
    result = compare(expected, actual)
    assert result.identical
    assert result.rows_compared == 2


def test_a_different_row_is_a_mismatch_showing_what_differs() -> None:
    result = compare(
        features_by_key([item(2, {"i2": 1, "i3": 4}), user("1")]),
        features_by_key([item(2, {"i2": 2, "i3": 4}), user("1")]),
    )
    assert not result.identical
    assert [m.key for m in result.mismatches] == ["item#i1"]
    example = result.mismatches[0].as_dict()
    assert example["fields"] == {"covis": {"expected": "{'i2': 1}", "actual": "{'i2': 2}"}}


def test_a_missing_row_is_a_mismatch() -> None:
    result = compare(features_by_key([item(2, {}), user("1")]), features_by_key([user("1")]))
    assert [(m.key, m.actual) for m in result.mismatches] == [("item#i1", None)]
    assert result.rows_compared == 2
