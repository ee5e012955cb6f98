"""The whole pipeline on the embedded default with `--rehearse`: where its time goes.

Every engine call is the rehearsal stand-in (llm/rehearsal.py); everything else is the real
job: Ray Data stages, sinks, finalize, ledger, quality, labelling, three DeepSpeed trainings
on the tiny model, evaluation and the report. It prints the wall time, the seconds each job
recorded in the ledger, and checks what the rehearsal must leave: every stage complete, the
report, rehearsal lineage on every engine row, and `--list` saying complete afterwards.

It was a CI test until the suite outgrew CI's budget (about 11 minutes on 2 cores, most of
it the trainings' start-up); the synthesize rehearsal and its kill/resume stay in CI
(tests/integration/test_rehearsal.py).

    .venv/bin/python benchmarks/rehearse_pipeline.py
    .venv/bin/python benchmarks/rehearse_pipeline.py --run-dir /tmp/rehearsed --keep
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from promptcot_ray.ledger import read_ledger  # noqa: E402
from promptcot_ray.llm.rehearsal_config import REHEARSAL_MODEL  # noqa: E402
from promptcot_ray.storage import RunDir  # noqa: E402

CONFIG = REPO / "jobs" / "configs" / "pipeline-local.yaml"
COMPLETE = ("concepts/pool", "rationales", "synthesis/round-0", "synthesis/round-1", "problems")
COMPLETE += ("distill", "models/student/final", "models/generator/final")


def _pipeline(run_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "promptcot_ray.cli", "pipeline", "-c", str(CONFIG)]
    cmd += ["--rehearse", "--set", f"storage.run_dir={run_dir}", *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, env=env)


def _checks(run_dir: Path) -> list[tuple[str, bool]]:
    run = RunDir(str(run_dir))
    checks = [(f"{rel} complete", run.is_complete(rel)) for rel in COMPLETE]
    checks.append(("eval summary", run.exists(f"eval/{REHEARSAL_MODEL}/summary.json")))
    index = run_dir / "report" / "index.html"
    checks.append(("report written", index.exists() and index.stat().st_size > 1000))
    labels = run.read_table("distill/labels")
    checks.append(("teachers agreed on some problems", labels is not None and labels.num_rows > 0))
    models = {x.get("model") for x in read_ledger(run) if x["job"] != "train"} - {None}
    checks.append((f"engine rows all made by {REHEARSAL_MODEL}", models == {REHEARSAL_MODEL}))
    listing = _pipeline(run_dir, "--list").stdout.splitlines()
    states = [line.split(None, 1) for line in listing if line.strip()]
    ok = all(s[1].startswith("complete") for s in states if s[0] != "report")
    checks.append(("--list says complete", bool(states) and ok))
    return checks


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, help="default: a temporary folder")
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    args = parser.parse_args()
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="rehearse-pipeline-")) / "run"
    started = time.perf_counter()
    done = _pipeline(run_dir)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        print(done.stdout[-4000:] + done.stderr[-4000:])
        print(f"the rehearsed pipeline failed with exit {done.returncode} after {seconds:.0f} s")
        return 1
    by_job: dict[str, float] = defaultdict(float)
    for line in read_ledger(RunDir(str(run_dir))):
        by_job[line["job"]] += float(line.get("seconds") or 0.0)
    print(f"rehearsed pipeline: {seconds:.0f} s wall")
    for job, spent in sorted(by_job.items(), key=lambda kv: -kv[1]):
        print(f"  {job:<12} {spent:7.1f} s recorded in the ledger")
    checks = _checks(run_dir)
    for name, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'} {name}")
    failed = [name for name, ok in checks if not ok]
    print("all checks pass" if not failed else f"FAILED: {failed}")
    if not args.keep and args.run_dir is None:
        shutil.rmtree(run_dir.parent, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
