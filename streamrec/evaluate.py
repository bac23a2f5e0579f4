"""``streamrec evaluate`` and ``streamrec train``: wiring of the batch models to their input.

Input is MovieLens (``producers.movielens``: ratings as events, movie metadata for the content
model); reading the lake (``OfflineStore.read_events``) is to come. Extra models (the streaming
recommender) are added to ``model_specs()``'s mapping: a name -> ``ModelSpec(factory, grid)``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.settings import Settings

if TYPE_CHECKING:  # the models import numpy, scipy and implicit: only on use, not per command
    from models.evaluation import ModelSpec

METRICS = ("hr@10", "ndcg@10", "hr@20", "ndcg@20", "coverage@10", "fit_s", "score_ms_per_user")


def model_specs() -> dict[str, ModelSpec]:
    """Every model ``evaluate`` and ``train`` know, by name (register extra ones here)."""
    from models.evaluation import default_specs
    from producers.movielens import load_movie_metadata

    return default_specs(load_movie_metadata())


def add_model_parsers(sub: Any) -> None:
    """Register the ``evaluate`` and ``train`` subcommands."""
    ev = sub.add_parser(
        "evaluate", help="temporal leave-last-out evaluation of the models on MovieLens"
    )
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--models", help="comma-separated model names (default: all)")
    ev.add_argument("--events", type=_positive, help="use the first N ratings (default: all)")
    ev.set_defaults(func=run_evaluate)

    train = sub.add_parser("train", help="fit one model on all the data and write its artifact")
    train.add_argument("--model", default="ease", help="model name (default: ease)")
    train.add_argument("--out", type=Path, required=True, help="artifact file to write (npz)")
    train.add_argument("--events", type=_positive, help="use the first N ratings (default: all)")
    train.set_defaults(func=run_train)


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return value


def run_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    """Evaluate, print JSON or a table; exit status 2 on an unknown model name."""
    from models.evaluation import evaluate
    from models.interactions import InteractionLog
    from producers.movielens import load_movielens

    specs = model_specs()
    names = None if args.models is None else [n.strip() for n in args.models.split(",")]
    unknown = [n for n in names or [] if n not in specs]
    if unknown:
        print(
            f"streamrec evaluate: unknown model(s) {', '.join(unknown)}; known: {', '.join(specs)}",
            file=sys.stderr,
        )
        return 2
    began = time.perf_counter()
    log = InteractionLog.from_events(load_movielens(args.events))
    report = evaluate(log, specs, names, progress=lambda line: print(line, file=sys.stderr))
    report["wall_s"] = time.perf_counter() - began
    if not report["data"]["test_users"]:
        print(
            "streamrec evaluate: no user has two interactions: nothing was evaluated",
            file=sys.stderr,
        )
    print(json.dumps(report) if args.json else _table(report))
    return 0


def _table(report: dict[str, Any]) -> str:
    width = {m: max(len(m), 7) + 2 for m in METRICS}
    header = f"{'model':<10}" + "".join(f"{m:>{width[m]}}" for m in METRICS) + "  params"
    lines = [header]
    for name, row in report["models"].items():
        cells = "".join(f"{row[m]:>{width[m]}.4f}" for m in METRICS)
        lines.append(f"{name:<10}{cells}  {json.dumps(row['params'])}")
    data = report["data"]
    lines.append(
        f"{data['interactions']} interactions, {data['users']} users, {data['items']} items, "
        f"{data['test_users']} test users; {report['wall_s']:.1f} s"
    )
    return "\n".join(lines)


def run_train(args: argparse.Namespace, settings: Settings) -> int:
    """Tune on each user's last interaction, fit on everything, write the artifact."""
    from models.evaluation import tune
    from models.interactions import InteractionLog, Interactions
    from producers.movielens import load_movielens

    specs = model_specs()
    if args.model not in specs:
        print(
            f"streamrec train: unknown model {args.model!r}; known: {', '.join(specs)}",
            file=sys.stderr,
        )
        return 2
    spec = specs[args.model]
    log = InteractionLog.from_events(load_movielens(args.events))
    params = dict(spec.grid[0]) if len(spec.grid) == 1 else tune(spec, log)[0]
    began = time.perf_counter()
    model = spec.factory(**params).fit(Interactions.from_log(log))
    fit_s = time.perf_counter() - began
    data = model.to_bytes()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_bytes(data)
    summary = {
        "model": args.model,
        "params": params,
        "out": str(args.out),
        "bytes": len(data),
        "interactions": len(log),
        "fit_s": fit_s,
    }
    print(json.dumps(summary))
    return 0
