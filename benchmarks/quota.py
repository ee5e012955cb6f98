"""A quota round in rehearsal: combinations used to reach a target, against the ideal.

One judge whose rehearsal replies are Perfect for 25% of drafts (every draft parses), so the
accept rate is about 25%; the round is asked for `--target` accepted problems (10,000 by
default) with a deliberately wrong first guess of the rate (`--expected-rate`, 0.5) and
waves of at most `--wave` combinations. It prints the combinations sent against the ideal
(target / the accept rate the round saw), the overshoot, the waves and the wall time.
Issue #16's goal: sent <= 1.05 x ideal + one wave.

    .venv/bin/python benchmarks/quota.py
    .venv/bin/python benchmarks/quota.py --target 2000 --wave 2048 --run-dir /tmp/q --keep
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from promptcot_ray.storage import RunDir  # noqa: E402

SHARES = {  # one judge: Perfect for 25% of drafts; no draft fails to parse
    "judge_perfect_share": 0.25,
    "judge_acceptable_share": 0.45,
    "judge_bad_share": 0.2,
    "judge_unparseable_share": 0.1,
}


def config(run_dir: Path, args: argparse.Namespace) -> dict:
    cfg = yaml.safe_load((REPO / "jobs" / "configs" / "local.yaml").read_text())
    cfg["storage"] = {"run_dir": str(run_dir)}
    cfg["pool"] = {"source": "builtin", "embedding": "hashed"}
    cfg["combinations"] = {"temperature": 2.0, "seed": 0}  # a flat sampler: few duplicates
    cfg["generator"]["rehearsal"] = {"draft_unparseable_share": 0.0}
    judge = cfg["judges"][0]
    judge["llm"] = {**judge["llm"], "rehearsal": SHARES}
    cfg["judges"] = [judge]
    cfg["checkpoint_rows"] = 512
    cfg["quota"] = {
        "target_accepted": args.target,
        "expected_accept_rate": args.expected_rate,
        "wave_combinations": args.wave,
    }
    return cfg


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=int, default=10_000)
    parser.add_argument("--expected-rate", type=float, default=0.5)
    parser.add_argument("--wave", type=int, default=8192)
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the run directory")
    args = parser.parse_args()
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="quota-bench-")) / "run"
    cfg_file = run_dir.parent / "quota-bench.yaml"
    cfg_file.parent.mkdir(parents=True, exist_ok=True)
    cfg_file.write_text(yaml.safe_dump(config(run_dir, args), sort_keys=False))
    cmd = [sys.executable, "-m", "promptcot_ray.cli", "synthesize", "-c", str(cfg_file)]
    started = time.time()
    done = subprocess.run(
        [*cmd, "--rehearse"],
        cwd=REPO,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        capture_output=True,
        text=True,
    )
    seconds = time.time() - started
    if done.returncode:
        sys.exit(done.stdout[-3000:] + done.stderr[-3000:])
    quota = RunDir(str(run_dir)).read_json("synthesis/round-0/stats.json")["quota"]
    decided = quota["combinations_sent"]
    rate = quota["accepted"] / decided
    ideal = args.target / rate
    print(f"target {args.target}, accepted {quota['accepted']} ({quota['stop_reason']})")
    print(f"accept rate seen {rate:.4f}; first guess {args.expected_rate}")
    print(f"combinations sent {decided}, ideal (target / rate) {ideal:.0f}: {decided / ideal:.4f}x")
    print(f"goal <= 1.05 x ideal + one wave = {1.05 * ideal + args.wave:.0f}")
    print(f"combinations sampled {quota['combinations_sampled']} (duplicates, covered levels)")
    print(f"waves {quota['waves']}, wall {seconds:.0f} s")
    if not args.keep:
        shutil.rmtree(run_dir.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
