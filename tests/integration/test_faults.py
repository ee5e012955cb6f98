"""Faults a real run meets, through the CLI as a user runs it (issue #17):

- a second driver on a run directory a live driver holds is refused, naming the holder;
- SIGTERM (a KubeRay stop) mid-synthesize stops the job within a bounded time with a
  message saying how to resume; the re-run finishes with every combination decided
  exactly once (none lost, none duplicated).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptcot_ray import records as R
from promptcot_ray.lease import LEASE_FILE
from promptcot_ray.storage import RunDir

from .helpers import LOCAL_CONFIG, REPO, cli_overrides, outcome_ids

pytestmark = [pytest.mark.integration, pytest.mark.slow]

STOP_WITHIN_S = 60  # interrupts.DEFAULT_GRACE_S: the watchdog's limit
RESULTS = "synthesis/round-0/results"


# Enough work that the round is still running well after its first result file (the test
# sizes finish a second later): ~256 mostly distinct combinations (a flat sampler) whose
# drafts run the random model to 1024 tokens.
LONGER_ROUND = [
    "combinations.num_combinations=256",
    "combinations.temperature=2.0",
    "generator.max_tokens=1024",
]


def _synthesize(model, run_dir: str) -> list[str]:
    sets = [arg for s in LONGER_ROUND for arg in ("--set", s)]
    return [
        sys.executable,
        "-m",
        "promptcot_ray.cli",
        "synthesize",
        "--config",
        str(LOCAL_CONFIG),
        *cli_overrides(model, run_dir),
        *sets,
    ]


def _wait_for_lease(proc: subprocess.Popen, run: RunDir, log) -> None:
    """Until the driver holds the run directory (it takes the lease before Ray starts)."""
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if run.exists(LEASE_FILE):
            return
        time.sleep(0.1)
    log.flush()
    pytest.fail(f"no lease taken: {Path(log.name).read_text()[-3000:]}")


def _wait_for_results(proc: subprocess.Popen, run: RunDir, log) -> None:
    """Until the first result file is written (mid-run), or fail with the log's tail."""
    deadline = time.time() + 900
    while time.time() < deadline and proc.poll() is None:
        if run.list_files(RESULTS, ".parquet"):
            return
        time.sleep(0.2)
    log.flush()
    pytest.fail(f"no result file while running: {Path(log.name).read_text()[-3000:]}")


def test_a_second_driver_is_refused_naming_the_live_holder(tiny_model_path, tmp_path):
    run_dir = str(tmp_path / "run")
    run = RunDir(run_dir)
    command = _synthesize(tiny_model_path, run_dir)
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=log)
        try:
            _wait_for_lease(proc, run, log)
            holder = run.read_json(LEASE_FILE)
            assert holder["pid"] == proc.pid
            second = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
            assert proc.poll() is None, "the first driver ended before the second was refused"
        finally:
            proc.kill()
            proc.wait(timeout=60)
    assert second.returncode == 2, second.stderr[-2000:]
    refusal = [x for x in second.stderr.splitlines() if x.startswith("error:")]
    assert len(refusal) == 1 and f"pid {proc.pid} on {holder['host']}" in refusal[0]
    assert "in use by another driver" in refusal[0]


def test_sigterm_stops_in_bounded_time_and_the_rerun_decides_each_combination_once(
    tiny_model_path, tmp_path
):
    run_dir = str(tmp_path / "run")
    run = RunDir(run_dir)
    command = _synthesize(tiny_model_path, run_dir)
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=log)
        try:
            # the second driver starts while the first is starting its engines (tens of s)
            _wait_for_lease(proc, run, log)
            holder = run.read_json(LEASE_FILE)
            assert holder["pid"] == proc.pid
            second = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
            assert proc.poll() is None, "the first driver ended before the second was refused"
            assert second.returncode == 2, second.stderr[-2000:]
            refusal = [x for x in second.stderr.splitlines() if x.startswith("error:")]
            assert len(refusal) == 1 and f"pid {proc.pid} on {holder['host']}" in refusal[0]
            assert "in use by another driver" in refusal[0]

            _wait_for_results(proc, run, log)
            assert proc.poll() is None, "the round ended before SIGTERM could stop it"
            started = time.time()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=STOP_WITHIN_S + 30)
            stopped_in = time.time() - started
        finally:
            if proc.poll() is None:
                proc.kill()
    first = (tmp_path / "first.log").read_text()
    assert code == 128 + signal.SIGTERM, first[-3000:]
    assert stopped_in < STOP_WITHIN_S, f"took {stopped_in:.0f} s to stop"
    message = [x for x in first.splitlines() if x.startswith("error:")]
    assert message and "stopped by SIGTERM" in message[-1], first[-3000:]
    assert "re-run the same command to resume" in message[-1] and run_dir in message[-1]
    assert not run.is_complete("synthesis/round-0")
    assert not run.exists(LEASE_FILE)  # released on the way out: the re-run need not wait
    partial = len(run.list_files(RESULTS, ".parquet"))

    again = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=1800)
    log = again.stdout + again.stderr
    assert again.returncode == 0, log[-3000:]
    resumed = re.search(r"\((\d+)\s+done\s+by\s+an\s+earlier\s+run\)", log)
    assert partial and resumed and int(resumed.group(1)) > 0, log[-3000:]
    combinations = run.read_table("synthesis/round-0/combinations")[R.ID].to_pylist()
    outcomes = outcome_ids(run_dir)  # combination ids of every accepted and rejected row
    assert len(outcomes) == len(set(outcomes))  # none decided twice
    assert sorted(outcomes) == sorted(combinations)  # none lost
    assert not run.exists(LEASE_FILE)
