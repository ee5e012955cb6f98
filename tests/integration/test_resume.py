"""Kill the synthesize driver part-way with SIGKILL, run again: no row is redone, and the
final ids equal those of a run that never stopped (the module's uninterrupted run)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptcot_ray.storage import RunDir

from .helpers import LOCAL_CONFIG, REPO, cli_overrides, outcome_ids

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _cli(model: Path, run_dir: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "promptcot_ray.cli",
        "synthesize",
        "--config",
        str(LOCAL_CONFIG),
        *cli_overrides(model, run_dir),
        "--set",
        "ray.num_cpus=8",
        # Small batches, one at a time: results land in many files over several seconds,
        # so the kill below falls mid-run. Ids must not depend on these settings.
        *[arg for setting in SLOW_SETTINGS for arg in ("--set", setting)],
    ]


SLOW_SETTINGS = [
    "checkpoint_rows=2",
    *[
        f"{llm}.{setting}"
        for llm in ("generator", "judges.0.llm", "judges.1.llm")
        for setting in ("batch_size=2", "max_concurrent_batches=1")
    ],
]


def _result_files(run_dir: str) -> list[str]:
    return RunDir(run_dir).list_files("synthesis/round-0/results", ".parquet")


def test_sigkill_then_rerun_finishes_with_the_same_ids(tiny_model_path, tmp_path, local_run):
    run_dir = str(tmp_path / "run")
    with open(tmp_path / "first.log", "w") as log:
        proc = subprocess.Popen(_cli(tiny_model_path, run_dir), cwd=REPO, stdout=log, stderr=log)
        deadline = time.time() + 480
        while time.time() < deadline and not _result_files(run_dir) and proc.poll() is None:
            time.sleep(0.05)
        assert proc.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
        assert _result_files(run_dir), "no result file within the deadline"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    written_before = len(_result_files(run_dir))
    assert not RunDir(run_dir).is_complete("synthesis/round-0")

    second = subprocess.run(
        _cli(tiny_model_path, run_dir), cwd=REPO, capture_output=True, text=True, timeout=900
    )
    assert second.returncode == 0, second.stderr[-3000:]
    found = re.search(r"\((\d+)\s+done\s+by\s+an\s+earlier\s+run\)", second.stdout)
    assert found, second.stdout[-2000:]
    done_before = int(found.group(1))
    generated_now = len(_result_files(run_dir)) - written_before
    assert done_before > 0 and generated_now > 0, (done_before, generated_now)
    ids = outcome_ids(run_dir)
    assert len(ids) == len(set(ids))
    _, _, uninterrupted_dir = local_run
    assert sorted(ids) == sorted(outcome_ids(uninterrupted_dir))
    drafts = [
        RunDir(d).read_table("synthesis/round-0/drafts") for d in (run_dir, uninterrupted_dir)
    ]
    assert sorted(drafts[0]["id"].to_pylist()) == sorted(drafts[1]["id"].to_pylist())
