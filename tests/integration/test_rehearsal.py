"""Rehearsal through the real commands: synthesize at a few thousand combinations, stopped
by SIGKILL and by SIGTERM, and resumed. The whole pipeline rehearsed on the embedded default
(about 11 minutes on 2 cores) is benchmarks/rehearse_pipeline.py, outside CI's budget.

Every engine call is the rehearsal stand-in (llm/rehearsal.py); everything else is the real
job: Ray Data stages, sinks, finalize, ledger, quality, labelling, training, report.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from promptcot_ray.lease import LEASE_FILE
from promptcot_ray.ledger import read_ledger
from promptcot_ray.llm.rehearsal_config import REHEARSAL_MODEL
from promptcot_ray.rehearsal import MODE_FILE
from promptcot_ray.storage import RunDir

from .helpers import LOCAL_CONFIG, REPO, outcome_ids, wait_for_results

pytestmark = [pytest.mark.integration, pytest.mark.slow]

COMBINATIONS = 2000
# a flat sampler (few duplicate combinations) and small result files: many engine rows,
# many files, so a kill lands mid-round; hashed embeddings load no sentence model
SYNTH_SETS = [
    f"combinations.num_combinations={COMBINATIONS}",
    "combinations.temperature=2.0",
    "pool.embedding=hashed",
    "checkpoint_rows=16",
]


def _synthesize(run_dir: Path, *extra: str) -> list[str]:
    sets = [f"storage.run_dir={run_dir}", *SYNTH_SETS]
    args = [a for s in sets for a in ("--set", s)]
    cli = [sys.executable, "-m", "promptcot_ray.cli", "synthesize", "-c", str(LOCAL_CONFIG)]
    return [*cli, *args, *extra]


def _run(cmd: list[str], timeout: int = 900) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout, env=env)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """An uninterrupted rehearsal of the round."""
    run_dir = tmp_path_factory.mktemp("rehearsal") / "reference"
    done = _run(_synthesize(run_dir, "--rehearse"))
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (run_dir.parent / "console.txt").write_text(done.stdout + done.stderr)
    return run_dir


def test_the_console_shows_the_jobs_own_lines_not_ray_datas(reference):
    """Issue #18's quiet console: a round of 2,000 combinations prints a few dozen lines
    (its own progress and summary), not Ray Data's plans and 10-second progress dumps."""
    lines = (reference.parent / "console.txt").read_text().splitlines()
    assert len(lines) < 60, "\n".join(lines)
    assert not [x for x in lines if "logging_progress" in x or "streaming_executor" in x]
    assert any("already done" in x for x in lines)  # the job's own progress remains
    assert any("of 2000 combinations in" in x for x in lines)  # and its summary


def test_rehearsed_round_decides_every_combination_with_rehearsal_lineage(reference):
    run = RunDir(str(reference))
    ids = outcome_ids(str(reference))
    assert len(ids) == len(set(ids)) == COMBINATIONS
    accepted = run.read_table("synthesis/round-0/accepted")
    assert 0 < accepted.num_rows < COMBINATIONS  # the judges' shares: some pass, most not
    assert set(accepted.column("model").to_pylist()) == {REHEARSAL_MODEL}  # lineage
    reasons = set(run.read_table("synthesis/round-0/rejected").column("reason").to_pylist())
    assert {"judged_acceptable", "judged_bad"} <= reasons, reasons
    generate = [x for x in read_ledger(run) if x["stage"] == "generate"]
    assert generate and generate[-1]["tokens_out"] > 0  # reply token counts reach the ledger
    assert run.read_json(MODE_FILE) == {"mode": "rehearsal"}


def test_the_second_judge_skips_what_the_first_rejected_except_the_audited_sample(reference):
    """The local config judges under only_perfect, so the cascade is on: judge_b judges a
    draft only when judge_a rated it perfect, or when the draft is in the audited sample."""
    from promptcot_ray.synthesis.cascade import audited

    run = RunDir(str(reference))
    stats = run.read_json("synthesis/round-0/stats.json")
    fraction = stats["cascade"]["audit_fraction"]
    saved = stats["cascade"]["judge_calls_saved"]
    judged = run.read_table("synthesis/round-0/judgements").to_pylist()
    by_a = {j["draft_id"]: j for j in judged if j["judge"] == "judge_a"}
    by_b = {j["draft_id"]: j for j in judged if j["judge"] == "judge_b"}
    assert set(by_b) <= set(by_a)
    for draft, a in by_a.items():
        passed = a["verdict"] == "perfect"
        assert (draft in by_b) == (passed or audited(draft, fraction)), (a, draft)
    assert saved == {"judge_b": len(by_a) - len(by_b)} and saved["judge_b"] > 0
    assert any(a["verdict"] != "perfect" for d, a in by_a.items() if d in by_b)  # audits
    ledger = {x["stage"]: x for x in read_ledger(run)}
    assert ledger["judge:judge_b"]["extra"]["calls_saved"] == saved["judge_b"]
    assert ledger["judge:judge_a"]["extra"]["calls_saved"] == 0
    verdict_of = {j["id"]: (j["judge"], j["verdict"]) for j in judged}
    accepted = run.read_table("synthesis/round-0/accepted")
    for parents in accepted.column("parent_ids").to_pylist():  # combination, judgements
        assert sorted(verdict_of[p] for p in parents[1:]) == [
            ("judge_a", "perfect"),
            ("judge_b", "perfect"),
        ]


def test_a_real_job_refuses_the_rehearsal_run_directory(reference, tiny_model_path):
    models = [f"{key}={tiny_model_path}" for key in ("generator.model", "judges.0.llm.model")]
    models.append(f"judges.1.llm.model={tiny_model_path}")  # a real model: past preflight
    done = _run(_synthesize(reference, *[a for s in models for a in ("--set", s)]), timeout=300)
    assert done.returncode == 2
    assert "holds rehearsal output and this is a real job" in done.stderr


def test_killed_rehearsal_resumes_to_the_same_ids(reference, tmp_path):
    run_dir = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with open(tmp_path / "killed.log", "w") as log:
        proc = subprocess.Popen(
            _synthesize(run_dir, "--rehearse"), cwd=REPO, stdout=log, stderr=log, env=env
        )
        wait_for_results(proc, str(run_dir), 3, tmp_path / "killed.log")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not RunDir(str(run_dir)).is_complete("synthesis/round-0")

    again = _run(_synthesize(run_dir, "--rehearse"))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    found = re.search(r"(\d+) already done", again.stderr + again.stdout)
    assert found and int(found.group(1)) > 0, (again.stderr + again.stdout)[-3000:]
    ids = outcome_ids(str(run_dir))
    assert len(ids) == len(set(ids))  # no combination decided twice
    assert sorted(ids) == sorted(outcome_ids(str(reference)))
    for name in ("accepted", "rejected"):
        mine = RunDir(str(run_dir)).read_table(f"synthesis/round-0/{name}")
        ref = RunDir(str(reference)).read_table(f"synthesis/round-0/{name}")
        assert sorted(mine.column("id").to_pylist()) == sorted(ref.column("id").to_pylist())


STOP_WITHIN_S = 60  # interrupts.DEFAULT_GRACE_S: the watchdog's limit


def test_sigterm_stops_in_bounded_time_and_the_rerun_decides_each_combination_once(
    reference, tmp_path
):
    """A KubeRay stop mid-round (issue #17): exit 143 within the grace period, a message
    saying how to resume, the lease released; the re-run decides exactly the reference's
    combinations, none twice. The engine is not the fault here, so it is the rehearsal one."""
    run_dir = tmp_path / "stopped"
    run = RunDir(str(run_dir))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    log_path = tmp_path / "stopped.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            _synthesize(run_dir, "--rehearse"), cwd=REPO, stdout=log, stderr=log, env=env
        )
        try:
            wait_for_results(proc, str(run_dir), 3, log_path)
            started = time.time()
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=STOP_WITHIN_S + 30)
            stopped_in = time.time() - started
        finally:
            if proc.poll() is None:
                proc.kill()
    first = log_path.read_text()
    assert code == 128 + signal.SIGTERM, first[-3000:]
    assert stopped_in < STOP_WITHIN_S, f"took {stopped_in:.0f} s to stop"
    message = [x for x in first.splitlines() if x.startswith("error:")]
    assert message and "stopped by SIGTERM" in message[-1], first[-3000:]
    assert "re-run the same command to resume" in message[-1] and str(run_dir) in message[-1]
    assert not run.is_complete("synthesis/round-0")
    assert not run.exists(LEASE_FILE)  # released on the way out: the re-run need not wait

    again = _run(_synthesize(run_dir, "--rehearse"))
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    found = re.search(r"(\d+) already done", again.stderr + again.stdout)
    assert found and int(found.group(1)) > 0, (again.stderr + again.stdout)[-3000:]
    ids = outcome_ids(str(run_dir))
    assert len(ids) == len(set(ids))  # none decided twice
    assert sorted(ids) == sorted(outcome_ids(str(reference)))  # none lost


OUTAGE_S = 20


def test_an_s3_outage_mid_write_stops_cleanly_or_is_ridden_out_and_no_row_is_lost(
    reference, s3_env, tmp_path
):
    """The S3 endpoint refuses connections for ~20 s while the round writes (issue #17).
    Without retries (storage.s3_max_retries=0) the job stops with one line saying how to
    resume, no traceback; the re-run, with the default retries, meets a second outage and
    rides it out. The decided ids equal the uninterrupted run's: none lost, none twice."""
    from urllib.parse import urlparse

    from tests.outage_proxy import OutageProxy

    proxy = OutageProxy(urlparse(s3_env["endpoint"]).port).start()
    run_uri = f"s3://{s3_env['bucket']}/outage"
    run = RunDir(run_uri)  # the test reads moto directly, the jobs go through the proxy
    env = {**os.environ, "OMP_NUM_THREADS": "1", "AWS_ENDPOINT_URL": proxy.endpoint}
    runs = {
        "impatient": _synthesize(run_uri, "--rehearse", "--set", "storage.s3_max_retries=0"),
        "patient": _synthesize(run_uri, "--rehearse"),
    }
    codes, logs, found = {}, {}, 0
    try:
        for name, command in runs.items():
            log_path = tmp_path / f"{name}.log"
            with open(log_path, "w") as log:
                proc = subprocess.Popen(command, cwd=REPO, stdout=log, stderr=log, env=env)
                try:
                    found = wait_for_results(proc, run_uri, found + 3, log_path)
                    assert not run.is_complete("synthesis/round-0")  # mid-round
                    outage = proxy.outage(OUTAGE_S if name == "patient" else 5)
                    codes[name] = proc.wait(timeout=900)
                    outage.join()
                finally:
                    if proc.poll() is None:
                        proc.kill()
            logs[name] = log_path.read_text()
    finally:
        proxy.stop()
    impatient = logs["impatient"]
    assert codes["impatient"] == 2, impatient[-3000:]
    message = [x for x in impatient.splitlines() if x.startswith("error:")]
    assert len(message) == 1 and "failed mid-job" in message[0], impatient[-3000:]
    assert impatient.strip().splitlines()[-1] == message[0]  # the CLI's last word, no traceback
    assert "AWS Error NETWORK_CONNECTION" in message[0]  # the failing request, in one line
    assert "re-run the same command to resume" in message[0] and run_uri in message[0]
    assert codes["patient"] == 0, logs["patient"][-3000:]
    assert re.search(r"[1-9]\d* already done", logs["patient"])  # it resumed
    assert run.is_complete("synthesis/round-0")
    ids = outcome_ids(run_uri)
    assert len(ids) == len(set(ids))  # none decided twice
    assert sorted(ids) == sorted(outcome_ids(str(reference)))  # none lost
    for name in ("accepted", "rejected"):
        mine = run.read_table(f"synthesis/round-0/{name}")
        ref = RunDir(str(reference)).read_table(f"synthesis/round-0/{name}")
        assert sorted(mine.column("id").to_pylist()) == sorted(ref.column("id").to_pylist())
