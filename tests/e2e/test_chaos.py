"""``streamrec chaos``: a consumer killed with SIGKILL five times ends with a clean run's rows."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.e2e.test_demo_cli import _environment

CHAOS_DEADLINE_SECONDS = 600  # measured 151 s on a loaded 2-core machine
CHAOS_ARGS = ("--events", "20000", "--kills", "5", "--json")  # issue 4


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
    assert report["kills"] == 5
    assert report["events"] == 20000
    assert report["rows_compared"] > 0
