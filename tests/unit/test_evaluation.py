"""The evaluation protocol: the published MostPop figure, tuning, determinism, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from models.algorithms import MostPop, read_artifact
from models.evaluation import ModelSpec, default_specs, evaluate, fit_and_measure, measure, tune
from models.interactions import InteractionLog, Interactions
from producers.movielens import load_movie_metadata, load_movielens
from streamrec.cli import main

TIMINGS = ("fit_s", "score_ms_per_user")
SUBSET = 3000  # the first ratings in time order: 3 s for every model, twice


def test_mostpop_reproduces_the_published_figures_on_all_of_movielens() -> None:
    log = InteractionLog.from_events(load_movielens(None))
    assert len(log) == 100_004
    _, metrics = fit_and_measure(ModelSpec(MostPop), {}, log)
    assert round(metrics["hr@10"], 4) == 0.0432  # 29 hits among 671 users
    assert round(metrics["ndcg@10"], 4) == 0.0198


class Fixed:
    """A model whose scores are given: column j scores ``weights[j]`` for everyone."""

    name = "fixed"

    def __init__(self, weights: tuple[float, ...] = (0.0,)) -> None:
        self.params = {"weights": weights}

    def fit(self, train: Interactions) -> Fixed:
        self.n_items = train.n_items
        return self

    def score(self, users: np.ndarray) -> np.ndarray:
        row = np.resize(np.array(self.params["weights"], dtype=np.float32), self.n_items)
        return np.tile(row, (len(users), 1))

    def to_bytes(self) -> bytes:
        return b""


def _tiny() -> Interactions:
    log = InteractionLog.from_columns(
        ["a", "a", "b", "b", "c"], ["x", "y", "y", "z", "x"], [1, 2, 3, 4, 5]
    )
    return Interactions.from_log(log)  # items x=0, y=1, z=2


def test_measure_excludes_seen_items_and_counts_cold_targets_as_misses() -> None:
    train = _tiny()
    model = Fixed((3.0, 2.0, 1.0)).fit(train)
    # a has seen x, y: z is its first; b has seen y, z: x first; c's item is cold
    metrics = measure(model, train, np.array(["a", "b", "c"]), np.array(["z", "z", "new"]))
    assert metrics["hr@10"] == pytest.approx(1 / 3)  # only a's z is a hit; b saw z already
    assert metrics["ndcg@10"] == pytest.approx(1 / 3)
    assert metrics["coverage@10"] == pytest.approx(1.0)  # a: z; b: x; c: y, z


def test_tuning_picks_the_best_validation_ndcg_and_the_first_of_equals() -> None:
    log = InteractionLog.from_columns(
        ["d", "a", "a", "b", "b", "c", "c", "d"],
        ["z", "x", "y", "y", "z", "x", "z", "w"],
        [0, 1, 2, 3, 4, 5, 6, 7],
    )
    # validation: a's y, b's z, c's z, d's w (cold) held out; train items z=0, x=1, y=2
    spec = ModelSpec(Fixed, [{"weights": w} for w in ((0, 5, 0), (1, 0, 0), (0, 0, 0))])
    params, score = tune(spec, log)
    # (1, 0, 0): z first: a's y ranks 1, b's and c's z rank 0; (0, 0, 0) ties it, later in the
    # grid; (0, 5, 0) puts x before b's z
    assert params == {"weights": (1, 0, 0)}
    assert score == pytest.approx((1 / np.log2(3) + 2) / 4)


def _without_timings(report: dict) -> dict:
    for row in report["models"].values():
        for key in TIMINGS:
            assert row.pop(key) >= 0
    return report


def test_evaluation_on_a_fixed_subset_is_deterministic() -> None:
    specs = default_specs(load_movie_metadata())
    runs = [
        _without_timings(evaluate(InteractionLog.from_events(load_movielens(SUBSET)), specs))
        for _ in range(2)
    ]
    assert json.dumps(runs[0], sort_keys=True) == json.dumps(runs[1], sort_keys=True)
    assert set(runs[0]["models"]) == {"mostpop", "itemknn", "ease", "als", "content"}


def test_unknown_models_are_refused_by_name() -> None:
    log = InteractionLog.from_events(load_movielens(50))
    with pytest.raises(ValueError, match="unknown model"):
        evaluate(log, {"mostpop": ModelSpec(MostPop)}, ["nope"])


def test_evaluate_json_has_every_metric_of_every_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--json", "--events", str(SUBSET), "--models", "mostpop,ease"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["models"]) == {"mostpop", "ease"}
    for row in report["models"].values():
        assert set(row) >= {
            "hr@10",
            "ndcg@10",
            "hr@20",
            "ndcg@20",
            "coverage@10",
            "fit_s",
            "score_ms_per_user",
            "params",
        }
        assert 0 <= row["ndcg@10"] <= row["hr@10"] <= row["hr@20"] <= 1
    assert "lam" in report["models"]["ease"]["params"]
    assert report["data"]["interactions"] == SUBSET


def test_evaluate_names_an_unknown_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["evaluate", "--models", "mostpop,nope"]) == 2
    assert "unknown model(s) nope" in capsys.readouterr().err


def test_train_writes_an_artifact_that_reads_back(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "itemknn.npz"
    argv = ["train", "--model", "itemknn", "--source", "movielens", "--events", str(SUBSET)]
    assert main([*argv, "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    model = read_artifact(out.read_bytes())
    assert summary["bytes"] == out.stat().st_size and model.params == summary["params"]
    assert len(model.similar_items(model.items[0], 5)) > 0
