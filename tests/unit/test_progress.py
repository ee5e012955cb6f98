"""The live progress line of a synthesis round (issue #16): counts from the written files."""

from __future__ import annotations

import io
import logging
import time

import pyarrow as pa
from rich.console import Console

from promptcot_ray import records as R
from promptcot_ray.storage import RunDir
from promptcot_ray.synthesis.progress import RoundProgress

RESULTS = "synthesis/round-0/results"


def _write(run: RunDir, name: str, statuses: list[str], accepted: list[bool | None]) -> None:
    ids = [f"{name}-{i}" for i in range(len(statuses))]
    table = pa.table({"combination_id": ids, R.STATUS: statuses, "accepted": accepted})
    run.write_table(f"{RESULTS}/{name}.parquet", table)


def test_the_line_counts_what_the_files_hold_and_only_this_pass_toward_its_eta(tmp_path):
    run = RunDir(str(tmp_path))
    _write(run, "earlier", ["ok", "filtered"], [True, False])  # an earlier run's rows
    progress = RoundProgress(run, RESULTS, 0, 2, wave_size=10, target=8)
    first = progress.poll()
    assert (first.accepted, first.decided, first.wave_done) == (1, 2, 0)
    assert first.eta() == "-"
    _write(run, "a", ["ok", "ok", "filtered", "error"], [True, True, False, None])
    snap = progress.poll()
    # engine errors are not decided (they are retried); accepted counts rows marked so
    assert (snap.accepted, snap.decided, snap.wave_done) == (3, 5, 3)
    line = snap.line(0, 2)
    assert line.startswith("round 0 wave 2: 3/8 accepted (rate 60.0% of 5 decided)")
    assert "3/10 combinations of this pass" in line
    assert progress.poll().decided == 5  # a file is counted once


def test_in_a_log_the_line_is_written_as_a_log_line(tmp_path, caplog):
    run = RunDir(str(tmp_path))
    _write(run, "a", ["ok"], [True])
    console = Console(file=io.StringIO(), force_terminal=False)
    progress = RoundProgress(run, RESULTS, 1, None, 4, None, 0.05, 0.0, console)
    with caplog.at_level(logging.INFO, logger="promptcot_ray.synthesis.progress"), progress:
        _write(run, "b", ["ok", "filtered"], [False, False])
        time.sleep(0.5)
    lines = [r.getMessage() for r in caplog.records]
    assert any(x.startswith("round 1: 1 accepted (rate 33.3% of 3 decided)") for x in lines), lines


def test_the_last_line_in_a_log_says_what_the_wave_committed(tmp_path, caplog):
    """A small round is one block: its results land after the last periodic line, so the
    line written when the wave ends must count them (it read 0/15 for a whole round)."""
    run = RunDir(str(tmp_path))
    console = Console(file=io.StringIO(), force_terminal=False)
    progress = RoundProgress(run, RESULTS, 0, None, 3, None, 0.05, 3600.0, console)
    with caplog.at_level(logging.INFO, logger="promptcot_ray.synthesis.progress"), progress:
        time.sleep(0.2)  # the first line is written: nothing committed yet
        _write(run, "only-block", ["ok", "filtered", "filtered"], [True, False, False])
    lines = [r.getMessage() for r in caplog.records]
    assert "0/3 combinations of this pass" in lines[0], lines
    assert lines[-1].startswith("round 0: 1 accepted (rate 33.3% of 3 decided)"), lines
    assert "3/3 combinations of this pass" in lines[-1], lines
