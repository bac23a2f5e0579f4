"""End-to-end freshness and throughput (issue 8). Prints one JSON object; progress on stderr.

    .venv/bin/python bench/e2e.py [--smoke] [--stacks embedded,faithful] [--rates 50,100,200]

Per stack, every part runs as its own process, as it would be deployed: the emulators (moto,
``python -m infra.local``; on the faithful stack kinesis-mock for Kinesis), ``streamrec consume``
(the embedded runner: features and the Parquet lander), ``streamrec serve`` (the worker, caching
in Redis), and this process, which produces and measures. After a warm-up that gives the items
co-visits, each rate is offered for ``DURATION_SECONDS``: background events of synthetic users
through the producer SDK (defaults: paced, linger 50 ms), and every ``PROBE_INTERVAL_SECONDS`` a
probe: an event of one of the probe users on their current top recommendation (once applied it
is a seen item, so the list must change). For each probe:

- feature freshness: from the ``put`` call until the user's row (DynamoDB, eventually
  consistent read) has the probe's item as its newest recent item;
- recommendation freshness: from the ``put`` call until ``GET /recommendations/<user>`` answers
  a list different from the one it answered just before the put (the cache invalidated, the
  features updated).

Polls run every ``POLL_SECONDS``. After the offer, a last probe measures the drain: how long the
consumer took to apply everything offered (``final_lag_ms``). A rate is *held* when the producer
sent at least 95 % of it and the drain took under ``HELD_LAG_MS``; ``max_sustained_events_per_s``
is the highest rate held, and the top-level freshness figures are those of that rate;
``max_fresh_events_per_s`` the highest held rate whose recommendation freshness p99 is under
1.5 s (the target). CPU
seconds per 1,000 events are read per process (psutil) over each rate's offer.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import psutil

from feature_store.online import OnlineStore
from infra.apply import apply
from infra.clients import async_client, client
from infra.kinesis_mock import available as kinesis_mock_missing
from infra.kinesis_mock import kinesis_mock
from infra.local import free_port, moto_process, stop_process, wait_http
from infra.local_redis import delete_prefix, local_redis_url
from infra.settings import Settings
from producers.events import Event
from producers.producer import EventProducer

VENV_BIN = Path(sys.executable).parent
DURATION_SECONDS = 20.0
PROBE_INTERVAL_SECONDS = 1.0
POLL_SECONDS = 0.1  # watching costs the emulators CPU: poll no faster than needed
PROBE_TIMEOUT_SECONDS = 20.0
HELD_LAG_MS = 2_000
FRESH_P99_S = 1.5  # the target for freshness p99
RATES = (50, 100, 200, 400)
WARM_USERS = 40
ITEMS = 60
PROBE_USERS = 8
START_TIMEOUT_SECONDS = 60.0


def log(message: str) -> None:
    print(f"e2e: {message}", file=sys.stderr, flush=True)


@dataclass
class Probe:
    """One measured event."""

    user: str
    item: str
    put_at: float
    before: list[str]
    feature_s: float | None = None
    rec_s: float | None = None


@dataclass
class Stack:
    """The processes of one stack and the settings that reach them."""

    settings: Settings
    api: str
    processes: dict[str, psutil.Process] = field(default_factory=dict)


def _percentile(samples: list[float], q: float) -> float | None:
    if not samples:
        return None
    ordered = sorted(samples)
    return round(ordered[min(len(ordered) - 1, math.ceil(q * len(ordered)) - 1)], 3)


LOCAL_CREDENTIALS = {  # the emulators accept any; never real ones
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _env(settings: Settings) -> dict[str, str]:
    env = {**os.environ, **LOCAL_CREDENTIALS}
    for name, value in settings.model_dump().items():
        if value is None:
            continue
        text = json.dumps(value) if isinstance(value, dict) else str(value)
        env[f"STREAMREC_{name.upper()}"] = text
    return env


@contextlib.contextmanager
def _process(command: list[str], env: dict[str, str], name: str) -> Iterator[subprocess.Popen]:
    # stderr to a file, never a pipe nobody reads: a full pipe would block the process (the
    # worker logs every request)
    with tempfile.TemporaryFile() as stderr:
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True
        )
        try:
            yield process
        finally:
            stop_process(process, timeout=30)
            if process.returncode not in (0, -15):
                stderr.seek(0)
                tail = stderr.read().decode(errors="replace")[-2000:]
                log(f"{name} exited with {process.returncode}: {tail}")


@contextlib.contextmanager
def stack(kind: str, redis_url: str) -> Iterator[Stack]:
    """moto (and kinesis-mock for ``faithful``), then the consumer and the worker."""
    api_port = free_port()
    os.environ.update(LOCAL_CREDENTIALS)  # this process's clients talk to the emulators only
    with contextlib.ExitStack() as resources:
        running_moto = resources.enter_context(moto_process())
        moto, moto_url = running_moto.process, running_moto.url
        services: dict[str, str] = {}
        if kind == "faithful":
            services["kinesis"] = resources.enter_context(kinesis_mock())
        settings = (
            Settings(redis_url=redis_url, api_port=api_port)
            .with_unique_names("e2e")
            .with_endpoint(moto_url, **services)
        )
        resources.callback(delete_prefix, redis_url, settings.cache_prefix)
        apply(settings)
        env = _env(settings)
        consumer = resources.enter_context(
            _process([str(VENV_BIN / "streamrec"), "consume"], env, "consumer")
        )
        worker = resources.enter_context(
            _process([str(VENV_BIN / "streamrec"), "serve"], env, "worker")
        )
        api = f"http://127.0.0.1:{api_port}"
        wait_http(f"{api}/healthz", worker, "worker", START_TIMEOUT_SECONDS)
        processes = {"moto": psutil.Process(moto.pid), "consumer": psutil.Process(consumer.pid)}
        processes["worker"] = psutil.Process(worker.pid)
        if kind == "faithful":
            node = [p for p in psutil.Process().children(recursive=True) if "node" in p.name()]
            if node:
                processes["kinesis_mock"] = node[0]
        processes["bench (producer, probes)"] = psutil.Process()
        yield Stack(settings, api, processes)


def _view(user: str, item: str) -> Event:
    now = int(time.time() * 1000)
    return Event(
        event_id=uuid.uuid4().hex, user_id=user, item_id=item, event_type="view", timestamp=now
    )


def _warm_events() -> list[Event]:
    """Each warm user views a window of consecutive items: every item gets co-visits."""
    events = []
    for u in range(WARM_USERS):
        for step in range(8):
            events.append(_view(f"warm-{u}", f"i{(u + step) % ITEMS}"))
    for p in range(PROBE_USERS):
        events.append(_view(f"probe-{p}", f"i{p}"))
    return events


async def _recommended(http: httpx.AsyncClient, user: str) -> list[str]:
    response = await http.get(f"/recommendations/{user}", params={"k": 10})
    response.raise_for_status()
    return [r["item_id"] for r in response.json()["recommendations"]]


async def _newest_recent(online: OnlineStore, user: str) -> str | None:
    features = await online.user(user)
    return features.recent[0].item_id if features and features.recent else None


async def _watch(probe: Probe, online: OnlineStore, http: httpx.AsyncClient) -> None:
    deadline = probe.put_at + PROBE_TIMEOUT_SECONDS
    while time.monotonic() < deadline and (probe.feature_s is None or probe.rec_s is None):
        if probe.feature_s is None and await _newest_recent(online, probe.user) == probe.item:
            probe.feature_s = time.monotonic() - probe.put_at
        if probe.rec_s is None and await _recommended(http, probe.user) != probe.before:
            probe.rec_s = time.monotonic() - probe.put_at
        await asyncio.sleep(POLL_SECONDS)  # a poll interval, under the deadline


class Prober:
    """Sends probe events and watches them land."""

    def __init__(self, producer: EventProducer, online: OnlineStore, http: httpx.AsyncClient):
        self._producer, self._online, self._http = producer, online, http
        self._n = 0
        self.watching: list[asyncio.Task[None]] = []

    async def probe(self) -> Probe:
        """An event on the user's top recommendation: once applied, it is seen, so the list
        must change (a new item would leave it as it was)."""
        user = f"probe-{self._n % PROBE_USERS}"
        self._n += 1
        before = await _recommended(self._http, user)
        item = before[0] if before else f"i{self._n % ITEMS}"
        probe = Probe(user, item, time.monotonic(), before)
        self._producer.put(_view(user, item))
        self.watching.append(asyncio.create_task(_watch(probe, self._online, self._http)))
        return probe


def _cpu(processes: dict[str, psutil.Process]) -> dict[str, float]:
    out = {}
    for name, process in processes.items():
        with contextlib.suppress(psutil.Error):
            times = process.cpu_times()
            out[name] = times.user + times.system
    return out


async def offer(s: Stack, rate: int, seconds: float) -> dict[str, Any]:
    """Offer ``rate`` events/s for ``seconds`` with probes; the figures of that rate."""
    settings = s.settings
    users = [f"bg-{rate}-{n}" for n in range(200)]
    async with (
        async_client("dynamodb", settings) as dynamodb,
        httpx.AsyncClient(base_url=s.api, timeout=10) as http,
    ):
        online = OnlineStore(dynamodb, settings.features_table)
        with EventProducer(client("kinesis", settings), settings.stream_name) as producer:
            prober = Prober(producer, online, http)
            probes: list[Probe] = []
            cpu_before = _cpu(s.processes)
            started = time.monotonic()
            sent, next_probe, tick = 0, started, 0.05
            while (now := time.monotonic()) - started < seconds:
                due = int((now - started) * rate) - sent
                if due > 0:
                    batch = [
                        _view(users[(sent + i) % len(users)], f"i{(sent + i) % ITEMS}")
                        for i in range(due)
                    ]
                    producer.put_many(batch, results=False)
                    sent += due
                if now >= next_probe:
                    probes.append(await prober.probe())
                    next_probe += PROBE_INTERVAL_SECONDS
                await asyncio.sleep(tick)  # the offer's clock
            offered_s = time.monotonic() - started
            last = await prober.probe()  # the drain: everything before it is applied first
            failed = producer.flush().failed
            await asyncio.gather(*prober.watching)
            cpu_after = _cpu(s.processes)
    events = sent + len(probes) + 1
    final_lag_ms = None if last.feature_s is None else round(last.feature_s * 1000)
    feature = [p.feature_s for p in probes if p.feature_s is not None]
    rec = [p.rec_s for p in probes if p.rec_s is not None]
    achieved = (sent + len(probes)) / offered_s
    held = achieved >= 0.95 * rate and final_lag_ms is not None and final_lag_ms < HELD_LAG_MS
    return {
        "offered_events_per_s": rate,
        "achieved_events_per_s": round(achieved, 1),
        "events": events,
        "failed": len(failed),
        "probes": len(probes),
        "probes_without_feature": len(probes) - len(feature),
        "probes_without_rec_change": len(probes) - len(rec),
        "feature_freshness_p50_s": _percentile(feature, 0.5),
        "feature_freshness_p95_s": _percentile(feature, 0.95),
        "feature_freshness_p99_s": _percentile(feature, 0.99),
        "rec_freshness_p50_s": _percentile(rec, 0.5),
        "rec_freshness_p95_s": _percentile(rec, 0.95),
        "rec_freshness_p99_s": _percentile(rec, 0.99),
        "final_lag_ms": final_lag_ms,
        "held": held,
        "cpu_s_per_1000_events": {
            name: round((cpu_after[name] - cpu_before[name]) / events * 1000, 3)
            for name in cpu_after
            if name in cpu_before
        },
    }


async def warm_up(s: Stack) -> None:
    with EventProducer(client("kinesis", s.settings), s.settings.stream_name) as producer:
        producer.put_many(_warm_events(), results=False)
        if producer.flush().failed:
            raise RuntimeError("warm-up events were not written")
    async with async_client("dynamodb", s.settings) as dynamodb:
        online = OnlineStore(dynamodb, s.settings.features_table)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while await _newest_recent(online, f"probe-{PROBE_USERS - 1}") is None:
            if time.monotonic() > deadline:
                raise TimeoutError("the consumer did not apply the warm-up events")
            await asyncio.sleep(0.2)  # polling the consumer's progress, under the deadline


def run_stack(kind: str, rates: list[int], seconds: float, redis_url: str) -> dict[str, Any]:
    with stack(kind, redis_url) as s:
        asyncio.run(warm_up(s))
        log(f"{kind}: warmed up")
        results = []
        for rate in rates:
            result = asyncio.run(offer(s, rate, seconds))
            log(f"{kind} @ {rate}/s: {json.dumps(result)}")
            results.append(result)
            if not result["held"]:
                break  # higher rates would only pile up more lag
    held = [r for r in results if r["held"]]
    best = held[-1] if held else results[-1]
    fresh = [r for r in held if (r["rec_freshness_p99_s"] or math.inf) < FRESH_P99_S]
    return {
        "max_sustained_events_per_s": best["offered_events_per_s"] if held else 0,
        **{k: best[k] for k in best if "freshness" in k},
        "final_lag_ms": best["final_lag_ms"],
        "cpu_s_per_1000_events": best["cpu_s_per_1000_events"],
        # the highest rate held with recommendation freshness p99 under the target
        "max_fresh_events_per_s": fresh[-1]["offered_events_per_s"] if fresh else 0,
        "fresh_rec_freshness_p99_s": fresh[-1]["rec_freshness_p99_s"] if fresh else None,
        "rates": results,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="one low rate for 3 s, one stack")
    parser.add_argument("--stacks", default="embedded,faithful", help="embedded and/or faithful")
    parser.add_argument("--rates", help="comma-separated events/s (default: 50,100,200,400)")
    parser.add_argument("--seconds", type=float, default=DURATION_SECONDS, help="per rate")
    args = parser.parse_args()
    print(json.dumps(run(args.smoke, args.stacks, args.rates, args.seconds), indent=2))


def run(smoke: bool, stacks: str, rates: str | None, seconds: float) -> dict[str, Any]:
    """Every stack asked for (``smoke``: the embedded one, 20 events/s for 3 s)."""
    kinds = ["embedded"] if smoke else [k.strip() for k in stacks.split(",")]
    chosen = [20] if smoke else [int(r) for r in rates.split(",")] if rates else list(RATES)
    seconds = 3.0 if smoke else seconds
    out: dict[str, Any] = {
        "config": {
            "rates": chosen,
            "seconds_per_rate": seconds,
            "probe_interval_s": PROBE_INTERVAL_SECONDS,
            "poll_s": POLL_SECONDS,
            "held_lag_ms": HELD_LAG_MS,
            "cpus": os.cpu_count(),
        }
    }
    with local_redis_url() as redis_url:
        for kind in kinds:
            if kind == "faithful" and (missing := kinesis_mock_missing()):
                out[kind] = {"skipped": missing}
                continue
            out[kind] = run_stack(kind, chosen, seconds, redis_url)
    out["targets"] = {
        f"{k}_rec_freshness_p99<1.5s_at_a_held_rate": out[k]["max_fresh_events_per_s"] > 0
        for k in kinds
        if "skipped" not in out[k]
    }
    return out


if __name__ == "__main__":
    main()
