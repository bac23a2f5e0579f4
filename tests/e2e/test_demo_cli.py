"""``streamrec demo --exit`` as a user runs it: one JSON summary line, every count agreeing."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

from infra.local import free_port

DEMO_EVENTS = 400
DEMO_DEADLINE_SECONDS = 180


def _environment(**extra: str) -> dict[str, str]:
    """This environment without endpoint or cache settings: the demo's own defaults."""
    kept = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_ENDPOINT_URL", "STREAMREC_"))
    }
    return {**kept, **extra}


def test_demo_prints_a_summary_whose_counts_agree() -> None:
    env = _environment(STREAMREC_API_PORT=str(free_port()))
    done = subprocess.run(
        [sys.executable, "-m", "streamrec.cli", "demo", "--events", str(DEMO_EVENTS), "--exit"],
        env=env,
        capture_output=True,
        text=True,
        timeout=DEMO_DEADLINE_SECONDS,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert summary["events_produced"] == DEMO_EVENTS
    assert summary["events_consumed"] == summary["events_produced"] == summary["parquet_rows"]
    assert summary["glue_partitions"] >= 1
    assert summary["feature_rows"] > 0
    assert summary["sample_user"]
    assert len(summary["sample_recommendations"]) == 10
    # MovieLens is decades old: shifted so that the last event is now, and said so
    assert "so that the last event is now" in done.stderr


def test_a_port_in_use_is_a_clear_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "streamrec.cli",
                "--port",
                str(port),
                "demo",
                "--events",
                "50",
                "--exit",
            ],
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=DEMO_DEADLINE_SECONDS,
            check=False,
        )
    assert done.returncode == 2
    assert f"127.0.0.1:{port} is in use" in done.stderr
