"""A quota round through the real command (issue #16): it reaches per-level targets, a
SIGKILL mid-round resumes to the same ids, a raised target extends the round without
redoing anything, and a lowered one is a no-op with a message.

The engine is not the subject, so every engine call is the rehearsal stand-in; the waves,
sampling by index, Ray Data stages, sinks, finalize and ledger are the real job.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.compute as pc
import pytest

from promptcot_ray import records as R
from promptcot_ray.ledger import read_ledger
from promptcot_ray.storage import RunDir

from .helpers import LOCAL_CONFIG, REPO, outcome_ids

pytestmark = [pytest.mark.integration, pytest.mark.slow]

ROUND = "synthesis/round-0"
TARGET = {"AIME": 3, "USAMO": 2}
# small waves and result files: several waves, so a kill lands mid-round
SETS = [
    "pool.embedding=hashed",
    "combinations.temperature=2.0",
    "checkpoint_rows=4",
    "quota.wave_combinations=16",
    "quota.sample_step=64",
]


def _synthesize(run_dir: Path, target: dict[str, int], total: int) -> list[str]:
    sets = [f"storage.run_dir={run_dir}", *SETS, f"quota.target_accepted={total}"]
    sets += [f"quota.per_level.{level}={n}" for level, n in target.items()]
    cli = [sys.executable, "-m", "promptcot_ray.cli", "synthesize", "-c", str(LOCAL_CONFIG)]
    return [*cli, *[a for s in sets for a in ("--set", s)], "--rehearse"]


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1"}


def _run(cmd: list[str]) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900, env=_env())
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return done


def _accepted(run_dir: Path) -> list[str]:
    return sorted(RunDir(str(run_dir)).read_table(f"{ROUND}/accepted").column("id").to_pylist())


def _per_level(run_dir: Path) -> dict[str, int]:
    levels = RunDir(str(run_dir)).read_table(f"{ROUND}/accepted").column("level").to_pylist()
    return {v: levels.count(v) for v in set(levels)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> tuple[Path, str]:
    """An uninterrupted quota round: 3 AIME, 2 USAMO and 8 in all."""
    run_dir = tmp_path_factory.mktemp("quota") / "reference"
    done = _run(_synthesize(run_dir, TARGET, 8))
    return run_dir, done.stdout + done.stderr


def test_the_round_meets_every_target_and_says_so(reference):
    run_dir, output = reference
    run = RunDir(str(run_dir))
    per_level = _per_level(run_dir)
    assert per_level.get("AIME", 0) >= 3 and per_level.get("USAMO", 0) >= 2, per_level
    assert sum(per_level.values()) >= 8
    stats = run.read_json(f"{ROUND}/stats.json")["quota"]
    assert stats["stop_reason"] == "target_met"
    assert stats["accepted"] == sum(per_level.values())
    assert not any(stats["remaining"].values())
    assert stats["waves"] >= 2, stats  # sized to the gap: more than one wave here
    assert "stopped by target_met" in output
    # a combination whose level was covered never reached the generator
    combos = run.read_table(f"{ROUND}/combinations")
    sent = combos.filter(pc.equal(combos[R.STATUS], R.STATUS_OK))
    assert (
        sent.num_rows
        == stats["combinations_sent"]
        == len(outcome_ids(str(run_dir))) - (combos.num_rows - sent.num_rows)
    )
    reasons = set(combos.column(R.REASON).drop_null().to_pylist())
    assert R.REASON_LEVEL_QUOTA_COVERED in reasons  # full levels were no longer sampled
    total = [x for x in read_ledger(run) if x["stage"] == "total"][-1]
    assert total["extra"]["quota"]["stop_reason"] == "target_met"


def test_the_report_says_how_the_quota_round_ended(reference, tmp_path):
    from promptcot_ray.report.job import build_report

    run_dir = tmp_path / "reported"
    subprocess.run(["cp", "-r", str(reference[0]), str(run_dir)], check=True)
    build_report(str(run_dir))
    page = (run_dir / "report" / "index.html").read_text()
    assert "round-0 quota: " in page and "accepted, stopped by target_met" in page


def test_a_killed_quota_round_resumes_to_the_same_ids(reference, tmp_path):
    ref_dir, _ = reference
    run_dir = tmp_path / "killed"
    run = RunDir(str(run_dir))
    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen(
            _synthesize(run_dir, TARGET, 8), cwd=REPO, stdout=log, stderr=log, env=_env()
        )
        deadline = time.time() + 600
        while time.time() < deadline and proc.poll() is None:
            if len(run.list_files(f"{ROUND}/results", ".parquet")) >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not run.is_complete(ROUND)
    again = _run(_synthesize(run_dir, TARGET, 8))
    found = re.search(r"(\d+) already done", again.stderr + again.stdout)
    assert found and int(found.group(1)) > 0, (again.stderr + again.stdout)[-3000:]
    ids = outcome_ids(str(run_dir))
    assert len(ids) == len(set(ids))  # no combination decided twice
    assert sorted(ids) == sorted(outcome_ids(str(ref_dir)))
    assert _accepted(run_dir) == _accepted(ref_dir)


def test_a_raised_target_extends_the_round_and_a_lowered_one_changes_nothing(reference, tmp_path):
    ref_dir, _ = reference
    run_dir = tmp_path / "extended"
    subprocess.run(["cp", "-r", str(ref_dir), str(run_dir)], check=True)
    before = _accepted(run_dir)
    decided_before = set(outcome_ids(str(run_dir)))
    sent_before = RunDir(str(run_dir)).read_json(f"{ROUND}/stats.json")["quota"]
    more = _run(_synthesize(run_dir, {"AIME": 5, "USAMO": 2}, 12))
    found = re.search(r"(\d+) already done", more.stderr + more.stdout)
    # every combination the first run sent is done; none is generated again
    assert found and int(found.group(1)) == sent_before["combinations_sent"], (
        more.stderr + more.stdout
    )[-3000:]
    after = _accepted(run_dir)
    assert set(before) < set(after)  # kept every earlier row, added new ones
    assert _per_level(run_dir)["AIME"] >= 5 and len(after) >= 12
    assert decided_before <= set(outcome_ids(str(run_dir)))

    lower = _run(_synthesize(run_dir, {"AIME": 1}, 4))
    assert "meets the target of 4; nothing to sample" in lower.stdout + lower.stderr
    assert _accepted(run_dir) == after


def test_a_later_round_never_reuses_a_concept_set_an_earlier_round_sent(reference, tmp_path):
    """Round 1 with round 0's sampler seed: its first indexes are round 0's concept sets, so
    every one of them round 0 sent must be skipped, and none reach the generator again."""
    ref_dir, _ = reference
    run_dir = tmp_path / "two-rounds"
    subprocess.run(["cp", "-r", str(ref_dir), str(run_dir)], check=True)
    _run([*_synthesize(run_dir, {"AIME": 1}, 2), "--set", "round=1"])
    run = RunDir(str(run_dir))

    def sent_sets(k: int) -> tuple[set, list]:
        t = run.read_table(f"synthesis/round-{k}/combinations", ["concepts", R.STATUS, R.REASON])
        rows = t.to_pylist()
        sent = {frozenset(r["concepts"]) for r in rows if r[R.STATUS] == R.STATUS_OK}
        return sent, [r[R.REASON] for r in rows]

    first, _ = sent_sets(0)
    second, reasons = sent_sets(1)
    assert second and not first & second
    assert reasons.count(R.REASON_USED_IN_EARLIER_ROUND) > 0
