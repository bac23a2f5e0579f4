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
    """Tune on each user's last interaction, measure the chosen parameters there (validation),
    fit on everything, then write the artifact and/or publish it; exit 2 on bad arguments."""
    from models.evaluation import fit_and_measure, tune
    from models.interactions import InteractionLog, Interactions
    from producers.movielens import load_movielens

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
    log = InteractionLog.from_events(load_movielens(args.events))
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
