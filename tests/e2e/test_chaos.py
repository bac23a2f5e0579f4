"""``streamrec chaos``: a consumer killed with SIGKILL three times ends with a clean run's rows."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.e2e.test_demo_cli import _environment

CHAOS_DEADLINE_SECONDS = 240
CHAOS_ARGS = ("--events", "3000", "--kills", "3", "--json")


def test_killing_the_consumer_leaves_the_features_identical() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "streamrec.cli", "chaos", *CHAOS_ARGS],
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=CHAOS_DEADLINE_SECONDS,
        check=False,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["identical"], report
    assert done.returncode == 0, done.stderr[-2000:]
    assert report["kills"] == 3
    assert report["events"] == 3000
    assert report["rows_compared"] > 0
