"""The MovieLens loader: every rating, in time order, in milliseconds; and the movie metadata."""

from __future__ import annotations

import itertools

from producers.events import EventType
from producers.movielens import load_movie_metadata, load_movielens

RATINGS = 100_004


def test_every_rating_is_an_event_in_time_order() -> None:
    events = load_movielens()
    assert len(events) == RATINGS
    times = [e.timestamp for e in events]
    assert times == sorted(times)
    assert len({e.event_id for e in events}) == RATINGS
    assert {e.event_type for e in events} == {EventType.RATING}


def test_timestamps_are_milliseconds_and_values_are_ratings() -> None:
    events = load_movielens()
    assert all(e.timestamp % 1000 == 0 for e in events)
    assert events[0].timestamp == 789_652_009_000  # 1995-01-09, the first rating
    assert {e.value for e in events} == {x / 2 for x in range(1, 11)}


def test_ties_keep_file_order_and_loading_is_deterministic() -> None:
    first, second = load_movielens(), load_movielens()
    assert first == second
    for before, after in itertools.pairwise(first):
        if before.timestamp == after.timestamp:
            assert int(before.event_id[3:]) < int(after.event_id[3:])


def test_the_first_row_of_the_file_is_mapped_field_by_field() -> None:
    row_one = next(e for e in load_movielens() if e.event_id == "ml-1")
    assert (row_one.user_id, row_one.item_id, row_one.value) == ("1", "31", 2.5)
    assert row_one.timestamp == 1_260_759_144_000


def test_limit_takes_the_earliest_events() -> None:
    assert load_movielens(limit=10) == load_movielens()[:10]
    assert load_movielens(limit=0) == []


def test_metadata_has_titles_genres_and_years() -> None:
    movies = load_movie_metadata()
    assert len(movies) == 9066
    dangerous_minds = movies["31"]
    assert (dangerous_minds.title, dangerous_minds.genres, dangerous_minds.year) == (
        "Dangerous Minds",
        ["Drama"],
        1995,
    )
    assert movies["1"].genres == ["Adventure", "Animation", "Children", "Comedy", "Fantasy"]
    assert any(m.year is None for m in movies.values())
    assert not any("(no genres listed)" in m.genres for m in movies.values())
    assert {e.item_id for e in load_movielens()} == set(movies)
