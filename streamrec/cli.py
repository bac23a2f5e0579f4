"""The ``streamrec`` command: the composition root. Parses arguments, builds settings, wires."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import logging
import signal
import sys
from collections.abc import Callable
from typing import Any

from consumers.backfill import DEFAULT_BATCH_SIZE
from infra.apply import apply
from infra.settings import Settings
from producers.replay import parse_duration, parse_instant

DEFAULT_MAX_LATENESS = "7d"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``streamrec`` console script."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    settings = Settings()
    if args.port is not None:
        settings = settings.model_copy(update={"api_port": args.port})
    try:
        return int(args.func(args, settings) or 0)
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        print(
            f"streamrec: {settings.api_host}:{settings.api_port} is in use; "
            "choose another port with --port or STREAMREC_API_PORT",
            file=sys.stderr,
        )
        return 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="streamrec", description=__doc__)
    parser.add_argument("--port", type=int, help="recommender API port (STREAMREC_API_PORT)")
    sub = parser.add_subparsers(required=True, metavar="command")

    demo = sub.add_parser("demo", help="run the whole pipeline on MovieLens and serve it")
    demo.add_argument("--events", type=int, default=None, help="limit the events (default: all)")
    demo.add_argument("--exit", action="store_true", help="exit after the summary line")
    demo.add_argument(
        "--stack",
        choices=("embedded", "env"),
        default="embedded",
        help="embedded: start moto in-process (default); env: use the AWS_ENDPOINT_URL* variables",
    )
    demo.set_defaults(func=_demo)

    infra = sub.add_parser("infra", help="resources").add_subparsers(
        required=True, metavar="action"
    )
    infra.add_parser("apply", help="create every resource (idempotent)").set_defaults(func=_apply)

    consume = sub.add_parser("consume", help="run a consumer runtime on the stream")
    consume.add_argument(
        "--runtime",
        choices=("embedded", "kcl"),
        default="embedded",
        help="embedded: the asyncio runner (default); kcl: the Java KCL MultiLangDaemon",
    )
    consume.add_argument("--until-caught-up", action="store_true", help="stop at the stream tip")
    consume.add_argument("--worker-id", help="KCL worker id (STREAMREC_KCL_WORKER_ID)")
    consume.set_defaults(func=_consume)

    chaos = sub.add_parser(
        "chaos", help="kill the consumer at random points; its features must equal a clean run's"
    )
    chaos.add_argument("--events", type=int, required=True, help="synthetic events to replay")
    chaos.add_argument("--kills", type=int, required=True, help="SIGKILLs of the consumer")
    chaos.add_argument("--seed", type=int, default=0, help="seed of the events and kill times")
    chaos.add_argument("--json", action="store_true", help="print one JSON line")
    chaos.set_defaults(func=_chaos)

    serve = sub.add_parser("serve", help="serve the recommender API (and POST /events)")
    serve.set_defaults(func=_serve)
    _replay_parser(sub)
    return parser


def _replay_parser(sub: Any) -> None:
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
    replay.set_defaults(func=_replay)


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


def _demo(args: argparse.Namespace, settings: Settings) -> int:
    from streamrec.demo import run_demo

    run_demo(settings, events=args.events, exit_after=args.exit, kind=args.stack)
    return 0


def _apply(args: argparse.Namespace, settings: Settings) -> int:
    apply(settings, log=print)
    return 0


def _consume(args: argparse.Namespace, settings: Settings) -> int:
    if args.runtime == "kcl":
        from streamrec.kcl_daemon import run_daemon

        if args.until_caught_up:
            print(
                "streamrec consume: --until-caught-up is for the embedded runtime", file=sys.stderr
            )
            return 2
        return run_daemon(settings, args.worker_id)

    from streamrec.wiring import pipeline

    async def run() -> None:
        # SIGTERM and Ctrl-C: finish the batch in hand, checkpoint, release the leases at once
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        async with pipeline(settings) as p:
            await p.runner.run(until_caught_up=args.until_caught_up, stop=stop)
            print(f"consumed {p.runner.stats.events} events", file=sys.stderr)

    asyncio.run(run())
    return 0


def _chaos(args: argparse.Namespace, settings: Settings) -> int:
    from streamrec.chaos import run_chaos

    report = run_chaos(settings, events=args.events, kills=args.kills, seed=args.seed)
    if args.json:
        print(json.dumps(report))
    else:
        for name, value in report.items():
            print(f"{name}: {value}")
    return 0 if report["identical"] else 1


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from models.worker import serve
    from streamrec.wiring import pipeline, recommender_app

    async def run() -> None:
        async with pipeline(settings) as p, recommender_app(settings, p.online) as app:
            await serve(app, settings.api_host, settings.api_port)

    asyncio.run(run())
    return 0


def _replay(args: argparse.Namespace, settings: Settings) -> int:
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


if __name__ == "__main__":
    sys.exit(main())
