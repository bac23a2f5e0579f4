"""Wiring of the metrics: one registry per process, the collectors of what the process runs.

``ProcessMetrics`` is made once by a command: the consumer (``streamrec consume``) registers
its pipeline and serves the registry on ``STREAMREC_METRICS_HOST:PORT``; the worker's
``/metrics`` serves its own, which in the demo (pipeline, SDK producer and worker in one
process) holds all of them.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry

from consumers.metrics import FeatureCollector, LanderCollector, ProcessorCollector, RunnerCollector
from infra.metrics import MetricsServer, ProducerCollector
from infra.settings import Settings
from models.worker_metrics import WorkerMetrics

if TYPE_CHECKING:  # wiring builds the worker with a ProcessMetrics: no import cycle at run time
    from streamrec.wiring import Pipeline


@dataclass
class ProcessMetrics:
    """The process's registry and its producers' collector (producers join as they are made)."""

    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    producers: ProducerCollector = field(default_factory=ProducerCollector)

    def __post_init__(self) -> None:
        self.registry.register(self.producers)

    def add_pipeline(self, p: Pipeline) -> None:
        """Collect the runner's per-shard progress and the processors' counts."""
        self.registry.register(RunnerCollector(p.runner.stats))
        self.registry.register(ProcessorCollector({"features": p.features, "lander": p.lander}))
        self.registry.register(FeatureCollector(p.features))
        self.registry.register(LanderCollector(p.lander))

    def worker(self) -> WorkerMetrics:
        """The worker's metrics, in this registry."""
        return WorkerMetrics(self.registry)


@contextmanager
def serving(settings: Settings, metrics: ProcessMetrics) -> Iterator[str | None]:
    """Serve ``metrics`` on the settings' metrics host and port while the block runs; yields
    the URL, or None when ``metrics_port`` is unset or 0 (nothing served)."""
    host, port = settings.metrics_host, settings.metrics_port
    if not port:
        yield None
        return
    try:
        server = MetricsServer(metrics.registry, host, port)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        raise SystemExit(
            f"streamrec: the metrics port {host}:{port} is in use; "
            "choose another with STREAMREC_METRICS_PORT"
        ) from exc
    with server:
        yield server.url


@contextmanager
def serving_pipeline(settings: Settings, p: Pipeline) -> Iterator[str | None]:
    """``streamrec consume``'s endpoint: a registry of ``p``'s collectors, served as the
    settings say (see ``serving``)."""
    metrics = ProcessMetrics()
    metrics.add_pipeline(p)
    with serving(settings, metrics) as url:
        yield url
