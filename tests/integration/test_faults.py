"""Faults a real run meets, through the CLI as a user runs it (issue #17):

- a second driver on a run directory a live driver holds is refused, naming the holder.

SIGTERM mid-round and its resume are in test_rehearsal.py (the rehearsal engine: the engine
is not the fault there, and CI's budget has no room for a long vLLM round).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from promptcot_ray.lease import LEASE_FILE
from promptcot_ray.storage import RunDir

from .helpers import LOCAL_CONFIG, REPO, cli, cli_overrides

pytestmark = [pytest.mark.integration, pytest.mark.slow]


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
    return cli("synthesize", "--config", str(LOCAL_CONFIG), *cli_overrides(model, run_dir), *sets)


def _wait_for_lease(proc: subprocess.Popen, run: RunDir, log) -> None:
    """Until the driver holds the run directory (it takes the lease before Ray starts)."""
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if run.exists(LEASE_FILE):
            return
        time.sleep(0.1)
    log.flush()
    pytest.fail(f"no lease taken: {Path(log.name).read_text()[-3000:]}")


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
