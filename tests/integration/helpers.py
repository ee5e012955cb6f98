"""Helpers shared by integration tests: configs derived from the shipped local default."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pytest

from promptcot_ray import records as R
from promptcot_ray.config import load_config
from promptcot_ray.llm.format_tuning import TOY_PROBLEMS, TOY_RATIONALES
from promptcot_ray.prompts import generator as generator_prompt
from promptcot_ray.storage import RunDir
from promptcot_ray.synthesis.config import SynthesizeConfig

REPO = Path(__file__).resolve().parents[2]
LOCAL_CONFIG = REPO / "jobs" / "configs" / "local.yaml"

# Small enough for 2 cores, large enough to span several result files.
TEST_OVERRIDES = [
    "combinations.num_combinations=24",
    "checkpoint_rows=4",
    "generator.max_tokens=48",
    "judges.0.llm.max_tokens=16",
    "judges.1.llm.max_tokens=16",
]


def cli(*args: str) -> list[str]:
    """The argv of `promptcot-ray ARGS...`, run as a user would, with this interpreter."""
    return [sys.executable, "-m", "promptcot_ray.cli", *args]


def synth_config(model: Path, run_dir: str, *extra: str) -> SynthesizeConfig:
    """The shipped local.yaml with the test model, a test run dir and small sizes."""
    overrides = [
        f"storage.run_dir={run_dir}",
        f"generator.model={model}",
        f"judges.0.llm.model={model}",
        f"judges.1.llm.model={model}",
        *TEST_OVERRIDES,
        *extra,
    ]
    return load_config(SynthesizeConfig, LOCAL_CONFIG, overrides)


def cli_overrides(model: Path, run_dir: str) -> list[str]:
    """The same settings as `synth_config`, as CLI --set arguments."""
    sets = [
        f"storage.run_dir={run_dir}",
        f"generator.model={model}",
        f"judges.0.llm.model={model}",
        f"judges.1.llm.model={model}",
        *TEST_OVERRIDES,
    ]
    return [arg for s in sets for arg in ("--set", s)]


def read_round(run_dir: str, name: str, round_index: int = 0) -> pa.Table:
    table = RunDir(run_dir).read_table(f"synthesis/round-{round_index}/{name}")
    assert table is not None, f"no {name} table in {run_dir}"
    return table


def outcome_ids(run_dir: str) -> list[str]:
    """Combination ids of every accepted and rejected row (one per combination)."""
    ids = []
    for name in ("accepted", "rejected"):
        table = RunDir(run_dir).read_table(f"synthesis/round-0/{name}")
        if table is not None:
            ids += table.column("combination_id").to_pylist()
    return ids


ROUND_0_RESULTS = "synthesis/round-0/results"


def wait_for_results(
    proc: subprocess.Popen, run_dir: str, at_least: int, log_path: Path, poll_s: float = 0.05
) -> int:
    """Block until the running job has written `at_least` result files of round 0, so a
    test's fault lands mid-round; their count. Fails when the job ends first or after 600 s."""
    run = RunDir(run_dir)
    deadline = time.time() + 600
    while time.time() < deadline and proc.poll() is None:
        found = len(run.list_files(ROUND_0_RESULTS, ".parquet"))
        if found >= at_least:
            return found
        time.sleep(poll_s)
    pytest.fail(f"not {at_least} result files while the job ran: {log_path.read_text()[-3000:]}")


DRAFT_CONCEPTS = (
    ["Pigeonhole principle", "Modular arithmetic"],
    ["Vieta's formulas", "AM-GM inequality", "Quadratic equations"],
    ["Inclusion-exclusion principle", "Binomial coefficients"],
    ["Power of a point", "Similar triangles", "Law of cosines"],
)
NUM_HAND_WRITTEN_DRAFTS = 12


def hand_written_drafts() -> pa.Table:
    """Hand-written parsed drafts (different concepts, levels, problems) and one failed one."""
    rows = []
    for i in range(NUM_HAND_WRITTEN_DRAFTS + 1):
        ok = i < NUM_HAND_WRITTEN_DRAFTS
        rows.append(
            {
                "combination_id": f"c{i}",
                "combination_index": i,
                "concepts": DRAFT_CONCEPTS[i % len(DRAFT_CONCEPTS)],
                "level": R.LEVELS[i % len(R.LEVELS)],
                "pool_version": "v",
                "sampler_seed": 0,
                "draft_id": f"d{i:02d}",
                "generator_model": "hand-written",
                "generator_prompt_version": generator_prompt.VERSION,
                "generation_seed": 0,
                "draft_text": "...",
                "rationale": TOY_RATIONALES[i % len(TOY_RATIONALES)] if ok else None,
                "problem": TOY_PROBLEMS[i % len(TOY_PROBLEMS)] if ok else None,
                "draft_tokens_in": 1,
                "draft_tokens_out": 1,
                "draft_status": R.STATUS_OK if ok else R.STATUS_FILTERED,
                "draft_reason": None if ok else R.REASON_DRAFT_MISSING_BOTH,
                "draft_error": None,
            }
        )
    return pa.Table.from_pylist(rows)
