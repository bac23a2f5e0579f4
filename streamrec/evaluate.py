"""``streamrec evaluate`` and ``streamrec train``: wiring of the batch models to their input.

Input is MovieLens (``producers.movielens``: ratings as events, movie metadata for the content
model); reading the lake (``OfflineStore.read_events``) is to come. Extra models (the streaming
recommender) are added to ``model_specs()``'s mapping: a name -> ``ModelSpec(factory, grid)``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from infra.settings import Settings

if TYPE_CHECKING:  # the models import numpy, scipy and implicit: only on use, not per command
    from models.evaluation import ModelSpec
    from models.streaming import FeatureSource
    from producers.events import Event

METRICS = ("hr@10", "ndcg@10", "hr@20", "ndcg@20", "coverage@10", "fit_s", "score_ms_per_user")


STREAMING_GRID = [
    {"trending": trending, "content": content}
    for trending in (0.0, 0.1, 0.3)
    for content in (0.0, 0.1, 0.3)
]


def model_specs(streaming: FeatureSource | None = None) -> dict[str, ModelSpec]:
    """Every model ``evaluate`` and ``train`` know, by name (register extra ones here); the
    streaming recommender when given where its features come from."""
    from models.evaluation import ModelSpec, default_specs
    from models.streaming import StreamingModel, memoised
    from producers.movielens import load_movie_metadata

    specs = default_specs(load_movie_metadata())
    if streaming is not None:
        source = memoised(streaming)
        specs["streaming"] = ModelSpec(lambda **p: StreamingModel(source, **p), STREAMING_GRID)
    return specs


def add_model_parsers(sub: Any) -> None:
    """Register the ``evaluate`` and ``train`` subcommands."""
    ev = sub.add_parser(
        "evaluate", help="temporal leave-last-out evaluation of the models on MovieLens"
    )
    ev.add_argument("--json", action="store_true", help="print one JSON object")
    ev.add_argument("--models", help="comma-separated model names (default: all)")
    ev.add_argument("--events", type=_positive, help="use the first N events (default: all)")
    _add_source(ev, default="movielens")
    ev.set_defaults(func=run_evaluate)

    train = sub.add_parser(
        "train", help="fit one model on all the data; write its artifact and/or register it"
    )
    train.add_argument("--model", default="ease", help="model name (default: ease)")
    train.add_argument("--out", type=Path, help="artifact file to write (npz)")
    train.add_argument(
        "--publish",
        action="store_true",
        help="register the version in the S3 model registry and promote it if it beats the "
        "promoted one by STREAMREC_PROMOTION_MARGIN on validation ndcg@10",
    )
    train.add_argument("--events", type=_positive, help="use the first N events (default: all)")
    _add_source(train, default="lake")
    train.set_defaults(func=run_train)


def _add_source(parser: argparse.ArgumentParser, default: str) -> None:
    parser.add_argument(
        "--source",
        choices=("lake", "movielens"),
        default=default,
        help="the offline lake's events (the Glue table's Parquet in S3) or the bundled MovieLens "
        f"ratings (default: {default})",
    )


class NoEvents(Exception):
    """The chosen source holds no events."""


def load_events(args: argparse.Namespace, settings: Settings) -> list[Event]:
    """The events ``--source`` names, the first ``--events`` of them in event-time order; the
    lake's once per event id (a replayed event lands twice)."""
    from producers.movielens import load_movielens

    if args.source == "movielens":
        return load_movielens(args.events)
    events = asyncio.run(_lake_events(settings))
    if not events:
        raise NoEvents(
            f"the lake (s3://{settings.bucket}/{settings.events_prefix}) holds no events; "
            "consume some first, or use --source movielens"
        )
    unique = list({e.event_id: e for e in reversed(events)}.values())[::-1]
    unique.sort(key=lambda e: e.timestamp)  # stable: equal times keep the lake's order
    return unique[: args.events]


async def _lake_events(settings: Settings) -> list[Event]:
    from streamrec.wiring import offline_store

    async with offline_store(settings) as offline:
        return await offline.read_events()


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {value}")
    return value


def run_evaluate(args: argparse.Namespace, settings: Settings) -> int:
    """Evaluate, print JSON or a table; exit status 2 on an unknown model name. The streaming
    recommender's training events go through a stream on an embedded stack started for it."""
    from streamrec.through_stream import StreamFeatures

    stream = StreamFeatures(settings)
    try:
        return _evaluate(args, settings, model_specs(stream))
    finally:
        stream.close()


def _evaluate(args: argparse.Namespace, settings: Settings, specs: dict[str, ModelSpec]) -> int:
    from models.evaluation import evaluate
    from models.interactions import InteractionLog

    names = None if args.models is None else [n.strip() for n in args.models.split(",")]
    unknown = [n for n in names or [] if n not in specs]
    if unknown:
        print(
            f"streamrec evaluate: unknown model(s) {', '.join(unknown)}; known: {', '.join(specs)}",
            file=sys.stderr,
        )
        return 2
    began = time.perf_counter()
    try:
        log = InteractionLog.from_events(load_events(args, settings))
    except NoEvents as exc:
        print(f"streamrec evaluate: {exc}", file=sys.stderr)
        return 2
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
    """Tune on each user's last interaction, measure the chosen parameters there (validation),
    fit on everything, then write the artifact and/or publish it; exit 2 on bad arguments."""
    from models.evaluation import fit_and_measure, tune
    from models.interactions import InteractionLog, Interactions

    if args.out is None and not args.publish:
        print("streamrec train: give --out FILE, --publish, or both", file=sys.stderr)
        return 2
    specs = model_specs()
    if args.model not in specs:
        print(
            f"streamrec train: unknown model {args.model!r}; known: {', '.join(specs)}",
            file=sys.stderr,
        )
        return 2
    spec = specs[args.model]
    try:
        log = InteractionLog.from_events(load_events(args, settings))
    except NoEvents as exc:
        print(f"streamrec train: {exc}", file=sys.stderr)
        return 2
    params = dict(spec.grid[0]) if len(spec.grid) == 1 else tune(spec, log)[0]
    _, validation = fit_and_measure(spec, params, log)
    began = time.perf_counter()
    model = spec.factory(**params).fit(Interactions.from_log(log))
    fit_s = time.perf_counter() - began
    data = model.to_bytes()
    summary: dict[str, Any] = {
        "model": args.model,
        "params": params,
        "bytes": len(data),
        "interactions": len(log),
        "fit_s": fit_s,
        "validation": {k: round(v, 6) for k, v in validation.items()},
    }
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_bytes(data)
        summary["out"] = str(args.out)
    if args.publish:
        data_range = (int(log.timestamps.min()), int(log.timestamps.max())) if len(log) else (0, 0)
        summary["registry"] = asyncio.run(
            _publish(settings, args.model, data, validation, params, data_range, len(log))
        )
    print(json.dumps(summary))
    return 0


async def _publish(
    settings: Settings,
    name: str,
    data: bytes,
    validation: dict[str, float],
    params: dict[str, Any],
    data_range: tuple[int, int],
    events: int,
) -> dict[str, Any]:
    from infra.clients import async_client
    from models.registry import ModelRegistry

    async with async_client("s3", settings) as s3:
        registry = ModelRegistry(s3, settings.bucket, settings.models_prefix)
        version = await registry.publish(name, data, validation, params, data_range, events)
        promotion = await registry.promote(version, margin=settings.promotion_margin)
    return {
        "version": version.version,
        "promoted": promotion.promoted,
        "reason": promotion.reason,
        "s3": f"s3://{settings.bucket}/{settings.models_prefix}{name}/versions/{version.version}/",
    }
