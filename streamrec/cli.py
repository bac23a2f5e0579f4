"""The ``streamrec`` command: the composition root. Parses arguments, builds settings, wires."""

from __future__ import annotations

import argparse
import asyncio
import errno
import json
import signal
import sys
from typing import Any

from infra.apply import apply
from infra.logs import configure_logging
from infra.settings import Settings
from streamrec.evaluate import add_model_parsers
from streamrec.infra_cmd import add_infra_commands
from streamrec.replay_args import add_replay_parser
from streamrec.status import add_status_parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``streamrec`` console script."""
    args = _parser().parse_args(argv)
    settings = Settings()
    configure_logging(settings.log_format, settings.log_level)
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
    add_infra_commands(infra)

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
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="worker processes sharing the port (STREAMREC_API_WORKERS, default 1)",
    )
    serve.set_defaults(func=_serve)
    add_replay_parser(sub)
    add_status_parser(sub)
    add_model_parsers(sub)
    _sql_parser(sub)
    return parser


def _sql_parser(sub: Any) -> None:
    sql = sub.add_parser(
        "sql",
        help="query the lake's Glue table with DuckDB (the view is named like the table)",
        description="Run a DuckDB query over the Glue table's Parquet in S3, e.g. "
        'streamrec sql "select event_type, count(*) from events group by 1"',
    )
    sql.add_argument("query", help="the SQL; the Glue table is a view of the same name")
    output = sql.add_mutually_exclusive_group()
    output.add_argument(
        "--json", dest="output", action="store_const", const="json", help="one JSON object a row"
    )
    output.add_argument(
        "--csv", dest="output", action="store_const", const="csv", help="CSV with a header"
    )
    sql.set_defaults(func=_sql, output="table")


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

    from streamrec.observability import serving_pipeline
    from streamrec.wiring import pipeline

    async def run() -> None:
        # SIGTERM and Ctrl-C: finish the batch in hand, checkpoint, release the leases at once
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        async with pipeline(settings) as p:
            with serving_pipeline(settings, p):  # STREAMREC_METRICS_PORT
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
    from streamrec.serve_cmd import serve_command

    return serve_command(settings, args.workers or settings.api_workers)


def _sql(args: argparse.Namespace, settings: Settings) -> int:
    from streamrec.lake_sql import run_sql

    return run_sql(settings, args.query, args.output)


if __name__ == "__main__":
    sys.exit(main())
