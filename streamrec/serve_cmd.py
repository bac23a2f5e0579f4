"""``streamrec serve``: the recommender API, in one process or in several sharing its port.

One Python process serves cached answers on one core. With ``--workers N``
(``STREAMREC_API_WORKERS``) the command starts N worker processes (spawned, so each builds its own
clients, cache and models), each listening on the same address with ``SO_REUSEPORT``: the kernel
spreads new connections over them. This process holds the port meanwhile (bound, never listening,
so it takes no connections; port 0 picks a free one for all) and supervises:

- SIGTERM is passed on to every worker, which stops gracefully (uvicorn finishes what it serves);
- SIGINT from a terminal reaches the workers directly (same process group): it is not repeated;
- a worker that exits on its own stops the others, and the command exits with its code, for the
  service manager (systemd, ECS, Kubernetes) to restart; nothing is restarted here.

Each worker freezes what start-up made (``gc.freeze``) before it serves: those objects live as
long as the process, and full collections over them paused a busy worker for 0.5 s
(docs/decisions/0022).
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import multiprocessing.connection
import signal
from typing import Any

from infra.logs import configure_logging
from infra.settings import Settings

log = logging.getLogger(__name__)

STOP_TIMEOUT_SECONDS = 30.0


def serve_command(settings: Settings, workers: int) -> int:
    """Serve the API with ``workers`` processes until stopped; the exit code."""
    if workers < 1:
        raise ValueError(f"workers must be at least 1, not {workers}")
    if workers == 1:
        serve_one(settings, reuse_port=False)
        return 0
    from models.worker import listening_socket

    holder = listening_socket(settings.api_host, settings.api_port, reuse_port=True)
    try:
        port = holder.getsockname()[1]
        shared = settings.model_copy(update={"api_port": port})
        return _supervise(shared, workers)
    finally:
        holder.close()


def serve_one(settings: Settings, reuse_port: bool) -> None:
    """One worker process's API (the body of ``streamrec serve`` with one worker)."""
    import uvloop

    from models.worker import serve
    from streamrec.wiring import pipeline, recommender_app

    async def run() -> None:
        async with (
            pipeline(settings) as p,
            recommender_app(
                settings, p.online, s3=p.clients.s3, dynamodb=p.clients.dynamodb
            ) as app,
        ):
            # start-up's objects (the clients' service models, the catalog) live as long as the
            # process: out of the collector's full passes, which paused a busy worker for 0.3 s
            gc.collect()
            gc.freeze()
            # uvicorn's loggers at the configured level: no access line made below it
            level = settings.log_level.lower()
            await serve(app, settings.api_host, settings.api_port, level, reuse_port)

    uvloop.run(run())  # the worker's event loop: libuv's, a faster drop-in for asyncio's


def _worker_main(settings: Settings) -> None:
    configure_logging(settings.log_format, settings.log_level)  # a spawned process starts bare
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # uvicorn installs its own handlers
    serve_one(settings, reuse_port=True)


def _supervise(settings: Settings, workers: int) -> int:
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=_worker_main, args=(settings,), name=f"streamrec-serve-{n}")
        for n in range(workers)
    ]
    stopping = False

    def stop(signum: int, _frame: Any) -> None:
        nonlocal stopping
        stopping = True
        if signum == signal.SIGTERM:
            for process in processes:
                if process.is_alive():
                    process.terminate()  # SIGTERM

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for process in processes:
            process.start()
        log.info(
            "serving on http://%s:%d with %d worker processes",
            settings.api_host,
            settings.api_port,
            workers,
        )
        ready = multiprocessing.connection.wait([p.sentinel for p in processes])
        first = next(p for p in processes if p.sentinel in ready)
        first.join()  # its sentinel closes as it exits: reap it for its exit code
        if not stopping:
            log.error("worker %s exited with %s; stopping the others", first.name, first.exitcode)
        for process in processes:
            if process.is_alive():
                process.terminate()
        for process in processes:
            process.join(STOP_TIMEOUT_SECONDS)
            if process.is_alive():
                log.error(
                    "worker %s did not stop in %ss: killed", process.name, STOP_TIMEOUT_SECONDS
                )
                process.kill()
                process.join()
        if stopping:
            return 0
        return first.exitcode or 1
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
