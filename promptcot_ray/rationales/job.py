"""`rationales`: seeds with concepts and level -> design rationales -> generator SFT rows.

Reads the concepts job's extraction rows, asks the writer model for each seed's rationale
(resumable, id-keyed files), and writes `rationales/data/` (prompt = the generator prompt,
completion = tagged rationale + problem) and `rationales/rejects/` with reasons.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from promptcot_ray import records as R
from promptcot_ray.concepts.job import EXTRACTED_DIR, read_extracted
from promptcot_ray.config import ConfigError, RationalesConfig, config_to_yaml
from promptcot_ray.ledger import StageRecord, append_records
from promptcot_ray.llm_stage import run_llm_stage
from promptcot_ray.rationales.stages import (
    RATIONALE_SCHEMA,
    BuildRationaleRequest,
    CollectRationale,
    SettleRationale,
)
from promptcot_ray.resume import without_written
from promptcot_ray.storage import RunDir

logger = logging.getLogger(__name__)

JOB = "rationales"
RESULTS_DIR = "rationales/results"
DATA_DIR = "rationales/data"
REJECTS_DIR = "rationales/rejects"


@dataclass
class RationalesSummary:
    run_dir: str
    inputs: int
    kept: int
    rejected: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    resumed_rows: int = 0


def _no_level_rows(rows: pa.Table) -> list[dict]:
    """Seeds without a contest level cannot form a generator prompt: counted rejections."""
    out = []
    for r in rows.to_pylist():
        out.append(
            {
                **R.lineage(
                    R.make_id("rationale-no-level", r[R.ID]),
                    [r[R.ID]],
                    R.STAGE_RATIONALE,
                    None,
                    None,
                    None,
                    0,
                ),
                "seed_id": r["seed_id"],
                "concepts": r["concepts"],
                "level": None,
                "problem": r["problem"],
                R.STATUS: R.STATUS_FILTERED,
                R.REASON: R.REASON_RATIONALE_NO_LEVEL,
            }
        )
    return out


def _inputs(run: RunDir) -> tuple[pa.Table, pa.Table]:
    if not run.exists(EXTRACTED_DIR):
        raise ConfigError(f"{run.uri_of(EXTRACTED_DIR)} is missing: run the concepts job first")
    extracted = read_extracted(run)
    ok = extracted.filter(pc.equal(extracted[R.STATUS], R.STATUS_OK))
    has_level = pc.invert(pc.is_null(ok["level"]))
    return ok.filter(has_level), ok.filter(pc.invert(has_level))


def finalize(run: RunDir) -> tuple[int, Counter[str]]:
    """Split results into data (SFT rows) and rejects; dedupe ids; count reasons."""
    table = run.read_table(RESULTS_DIR)
    rows, seen = [], set()
    for row in [] if table is None else table.to_pylist():
        if row[R.ID] not in seen:
            seen.add(row[R.ID])
            rows.append(row)
    ok = [r for r in rows if r[R.STATUS] == R.STATUS_OK]
    bad = [r for r in rows if r[R.STATUS] != R.STATUS_OK]
    for rel, part in ((DATA_DIR, ok), (REJECTS_DIR, bad)):
        run.delete_dir(rel)
        if part:
            run.write_table(
                f"{rel}/part-00000.parquet", pa.Table.from_pylist(part, schema=RATIONALE_SCHEMA)
            )
    return len(ok), Counter(r[R.REASON] for r in bad)


def run(cfg: RationalesConfig) -> RationalesSummary:
    """Run (or resume) rationale writing; Ray must be connected."""
    from promptcot_ray.prompts import rationale as rationale_prompt
    from promptcot_ray.sinks import conform

    started = time.time()
    run_dir = RunDir(cfg.storage.run_dir, cfg.storage)
    run_dir.preflight()
    run_dir.write_text("rationales/config.yaml", config_to_yaml(cfg))
    with_level, no_level = _inputs(run_dir)
    if no_level.num_rows:
        table = pa.Table.from_pylist(_no_level_rows(no_level), schema=RATIONALE_SCHEMA)
        run_dir.write_table(
            f"{RESULTS_DIR}/part-no-level.parquet", conform(table, RATIONALE_SCHEMA)
        )
    inputs = with_level.rename_columns(
        ["extraction_id" if c == R.ID else c for c in with_level.column_names]
    ).select(["extraction_id", "seed_id", "concepts", "level", "problem"])
    todo, done = without_written(inputs, "seed_id", run_dir, RESULTS_DIR, "seed_id")
    logger.info(
        "%d seeds with concepts and level; %d done, %d to go", inputs.num_rows, done, todo.num_rows
    )
    if todo.num_rows:
        steps = (
            BuildRationaleRequest(cfg.writer),
            CollectRationale(cfg.max_problem_overlap),
            SettleRationale(),
        )
        run_llm_stage(
            todo,
            cfg.writer,
            steps,
            run_dir,
            RESULTS_DIR,
            RATIONALE_SCHEMA,
            R.ID,
            cfg.checkpoint_rows,
        )
    kept, rejected = finalize(run_dir)
    seconds = time.time() - started
    total = kept + sum(rejected.values())
    results = run_dir.read_table(RESULTS_DIR, columns=["tokens_in", "tokens_out"])
    append_records(
        run_dir,
        [
            StageRecord(
                JOB,
                R.STAGE_RATIONALE,
                total,
                kept,
                dict(rejected),
                int(pc.sum(results["tokens_in"]).as_py() or 0) if results else 0,
                int(pc.sum(results["tokens_out"]).as_py() or 0) if results else 0,
                seconds,
                cfg.writer.model,
                rationale_prompt.VERSION,
            )
        ],
    )
    run_dir.mark_complete("rationales", {"rows": kept})
    return RationalesSummary(run_dir.uri, total, kept, rejected, seconds, done)
