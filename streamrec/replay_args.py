"""The ``streamrec replay`` subcommand: its arguments, their checks, and the dispatch to
``streamrec.replay`` (into a stream) or ``streamrec.backfill`` (into the features)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from consumers.backfill import DEFAULT_BATCH_SIZE
from infra.settings import Settings
from producers.replay import parse_duration, parse_instant

DEFAULT_MAX_LATENESS = "7d"


def add_replay_parser(sub: Any) -> None:
    """Add ``replay`` to the ``streamrec`` subcommands ``sub``."""
    replay = sub.add_parser(
        "replay",
        help="put an event-time range of the offline lake back on a stream, or rebuild the "
        "online features from it",
    )
    replay.add_argument(
        "--from",
        dest="start",
        required=True,
        type=_typed(parse_instant),
        metavar="T1",
        help="start of the event-time range, inclusive: ISO-8601 (UTC if no zone) or epoch ms",
    )
    replay.add_argument(
        "--to",
        dest="end",
        required=True,
        type=_typed(parse_instant),
        metavar="T2",
        help="end, exclusive",
    )
    target = replay.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--into-stream",
        metavar="NAME",
        help="Kinesis stream to put them on (must exist)",
    )
    target.add_argument(
        "--into-features",
        action="store_true",
        help="apply them through the feature processor to the features table "
        "(STREAMREC_FEATURES_TABLE); resumable: rerun the same command after an interruption",
    )
    pace = replay.add_mutually_exclusive_group()
    pace.add_argument(
        "--speed",
        type=_typed(_speed),
        metavar="X",
        help="pace by event time, X times faster than it happened (1 = real time)",
    )
    pace.add_argument("--max", action="store_true", help="send as fast as possible (default)")
    replay.add_argument(
        "--max-lateness",
        type=_typed(parse_duration),
        default=DEFAULT_MAX_LATENESS,
        metavar="DURATION",
        help="read arrival partitions up to this long after T2, e.g. 12h, 7d (default 7d); "
        "none reads every partition",
    )
    replay.add_argument(
        "--batch-size",
        type=_typed(_batch_size),
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"--into-features: events per batch (default {DEFAULT_BATCH_SIZE}); "
        "each row is written at most once per batch",
    )
    replay.add_argument(
        "--restart",
        action="store_true",
        help="--into-features: start from the first event, forgetting the stored progress",
    )
    replay.set_defaults(func=replay_command)


def _typed(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """An argparse type from a parser raising ValueError: its message becomes the usage error."""

    def convert(text: str) -> Any:
        try:
            return parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return convert


def _speed(text: str) -> float:
    speed = float(text)
    if not speed > 0 or speed == float("inf"):
        raise ValueError(f"speed must be a positive number, got {text}")
    return speed


def _batch_size(text: str) -> int:
    size = int(text)
    if size < 1:
        raise ValueError(f"batch size must be at least 1, got {text}")
    return size


def replay_command(args: argparse.Namespace, settings: Settings) -> int:
    """Run ``streamrec replay`` into a stream or into the features; the exit status."""
    problem = _replay_problem(args)
    if problem:
        print(f"streamrec replay: {problem}", file=sys.stderr)
        return 2
    if args.into_features:
        from streamrec.backfill import run_backfill

        return run_backfill(
            settings,
            start_ms=args.start,
            end_ms=args.end,
            max_lateness_ms=args.max_lateness,
            batch_size=args.batch_size,
            restart=args.restart,
        )
    from streamrec.replay import run_replay

    return run_replay(
        settings,
        start_ms=args.start,
        end_ms=args.end,
        stream=args.into_stream,
        speed=args.speed,
        max_lateness_ms=args.max_lateness,
    )


def _replay_problem(args: argparse.Namespace) -> str | None:
    """What is wrong with the replay arguments argparse cannot see, or None."""
    if args.end <= args.start:
        return "--to must be after --from"
    if args.into_features and (args.speed is not None or args.max):
        return "--speed and --max pace a stream; --into-features applies as fast as it can"
    if not args.into_features and (args.restart or args.batch_size != DEFAULT_BATCH_SIZE):
        return "--batch-size and --restart are for --into-features"
    return None
