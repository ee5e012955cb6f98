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

from promptcot_ray import layout, stage_marker
from promptcot_ray import records as R
from promptcot_ray.concepts.job import EXTRACTED_DIR, read_extracted
from promptcot_ray.config import ConfigError, config_hash, config_to_yaml
from promptcot_ray.error_budget import TooManyErrors, check_error_fraction
from promptcot_ray.ledger import StageRecord, append_records
from promptcot_ray.llm_stage import HELPER_CPUS, dataset_from_table, write_rows
from promptcot_ray.model_paths import with_run_models
from promptcot_ray.rationales.config import RationalesConfig
from promptcot_ray.rationales.stages import (
    RATIONALE_SCHEMA,
    BuildRationaleRequest,
    CollectRationale,
    SettleRationale,
)
from promptcot_ray.resume import finished_rows, without_written
from promptcot_ray.storage import RunDir

logger = logging.getLogger(__name__)

JOB = "rationales"
RESULTS_DIR = layout.RATIONALE_RESULTS
DATA_DIR = layout.RATIONALE_DATA
REJECTS_DIR = layout.RATIONALE_REJECTS
STAGE_DIR = layout.RATIONALES  # the stage's marker: rationales/_SUCCESS.json


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
                "candidate_key": f"{r['seed_id']}:0",
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


def keep_best(rows: list[dict]) -> None:
    """Best-of-n: per seed keep the highest-scoring ok candidate (ties: smallest id)."""
    best: dict[str, dict] = {}
    for r in rows:
        if r[R.STATUS] != R.STATUS_OK or r["score"] is None:
            continue
        held = best.get(r["seed_id"])
        if held is None or (r["score"], held[R.ID]) > (held["score"], r[R.ID]):
            best[r["seed_id"]] = r
    for r in rows:
        if r[R.STATUS] == R.STATUS_OK and best.get(r["seed_id"]) is not r:
            r[R.STATUS], r[R.REASON] = R.STATUS_FILTERED, R.REASON_RATIONALE_NOT_BEST


def expand_samples(inputs: pa.Table, n: int) -> pa.Table:
    """n candidate rows per seed (sample_index 0..n-1), keyed for resume."""
    parts = []
    for i in range(n):
        keys = pc.binary_join_element_wise(inputs["seed_id"], pa.scalar(str(i)), ":")
        part = inputs.append_column("sample_index", pa.array([i] * inputs.num_rows, pa.int64()))
        parts.append(part.append_column("candidate_key", keys))
    return pa.concat_tables(parts)


def build_pipeline(todo: pa.Table, cfg: RationalesConfig):
    """writer -> parse -> settle [-> scorer -> settle] as one lazy dataset."""
    from promptcot_ray.llm.engine import build_processor
    from promptcot_ray.rationales import scoring

    form = cfg.generator_prompt_format
    ds = build_processor(
        cfg.writer,
        BuildRationaleRequest(cfg.writer),
        CollectRationale(cfg.max_problem_overlap, form),
    )(dataset_from_table(todo, cfg.checkpoint_rows))
    ds = ds.map(SettleRationale(form), num_cpus=HELPER_CPUS)
    if cfg.best_of_n == 1:
        return ds
    scorer = cfg.scorer.model_copy(update={"apply_chat_template": False, "tokenizer_stages": False})
    carry = tuple(f.name for f in RATIONALE_SCHEMA if f.name not in scoring.SCORE_COLUMNS)
    pre = scoring.BuildScoreRequest(scorer, form)
    ds = build_processor(scorer, pre, scoring.CollectScore(carry))(ds)
    return ds.map(scoring.SettleScore(carry), num_cpus=HELPER_CPUS)


def finalize(run: RunDir, best_of_n: int) -> tuple[int, Counter[str]]:
    """Split results into data (SFT rows) and rejects; dedupe ids; count reasons."""
    table = run.read_table(RESULTS_DIR)
    rows = [] if table is None else finished_rows(table, "candidate_key").to_pylist()
    if best_of_n > 1:
        keep_best(rows)
    ok = [r for r in rows if r[R.STATUS] == R.STATUS_OK]
    bad = [r for r in rows if r[R.STATUS] != R.STATUS_OK]
    for rel, part in ((DATA_DIR, ok), (REJECTS_DIR, bad)):
        run.delete_dir(rel)
        if part:
            run.write_table(
                f"{rel}/part-00000.parquet",
                pa.Table.from_pylist(part, schema=RATIONALE_SCHEMA),
            )
    return len(ok), Counter(r[R.REASON] for r in bad)


def run(cfg: RationalesConfig) -> RationalesSummary:
    """Run (or resume) rationale writing; Ray must be connected."""
    from promptcot_ray.prompts import rationale as rationale_prompt
    from promptcot_ray.sinks import conform

    started = time.time()
    run_dir = RunDir(cfg.storage.run_dir, cfg.storage)
    run_dir.preflight()
    stage_marker.begin(run_dir, STAGE_DIR)  # data/ and rejects/ are rewritten below
    cfg = with_run_models(cfg, run_dir)  # `run:models/<name>/final` -> its location
    run_dir.write_text(layout.config_file(STAGE_DIR), config_to_yaml(cfg))
    with_level, no_level = _inputs(run_dir)
    if no_level.num_rows:
        table = pa.Table.from_pylist(_no_level_rows(no_level), schema=RATIONALE_SCHEMA)
        run_dir.write_table(
            f"{RESULTS_DIR}/part-no-level.parquet", conform(table, RATIONALE_SCHEMA)
        )
    inputs = with_level.rename_columns(
        ["extraction_id" if c == R.ID else c for c in with_level.column_names]
    ).select(["extraction_id", "seed_id", "concepts", "level", "problem"])
    inputs = expand_samples(inputs, cfg.best_of_n)
    todo, done = without_written(inputs, "candidate_key", run_dir, RESULTS_DIR, "candidate_key")
    logger.info(
        "%d seeds with concepts and level; %d done, %d to go",
        inputs.num_rows,
        done,
        todo.num_rows,
    )
    if todo.num_rows:
        write_rows(build_pipeline(todo, cfg), run_dir, RESULTS_DIR, RATIONALE_SCHEMA, R.ID)
    kept, rejected = finalize(run_dir, cfg.best_of_n)
    seconds = time.time() - started
    total = inputs.num_rows + no_level.num_rows  # candidates in: each must be kept or rejected
    results = run_dir.read_table(RESULTS_DIR, columns=["tokens_in", "tokens_out"])
    append_records(
        run_dir,
        [
            StageRecord(
                job=JOB,
                stage=R.STAGE_RATIONALE,
                rows_in=total,
                rows_out=kept,
                rejected=dict(rejected),
                tokens_in=int(pc.sum(results["tokens_in"]).as_py() or 0) if results else 0,
                tokens_out=int(pc.sum(results["tokens_out"]).as_py() or 0) if results else 0,
                seconds=seconds,
                model=cfg.writer.model,
                prompt_version=rationale_prompt.VERSION,
            )
        ],
    )
    # one outcome per candidate: a retried call's earlier error row does not count again
    results = run_dir.read_table(RESULTS_DIR, columns=["candidate_key", R.STATUS])
    if results is not None:
        once = finished_rows(results, "candidate_key")
        check_error_fraction(once, cfg.max_error_fraction, "rationale")
    stage_marker.commit(run_dir, STAGE_DIR, config_hash(cfg), {"rows": kept, "inputs": total})
    return RationalesSummary(run_dir.uri, total, kept, rejected, seconds, done)


EXPECTED_ERRORS = (TooManyErrors,)
