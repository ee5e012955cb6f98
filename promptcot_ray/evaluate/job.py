"""The evaluate job: n seeded runs of a model over problem sets, graded with math-verify.

Writes eval/<name>/generations (resumable), eval/<name>/samples (one graded row per item and
run), eval/<name>/summary.json and, last, eval/<name>/_SUCCESS.json (the stage's marker);
with `difficulty: true` also the method's two difficulty measures per set (the model's solve
rate, a reasoning model's mean reasoning tokens).
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from promptcot_ray import layout, stage_marker
from promptcot_ray import records as R
from promptcot_ray.config import LLMConfig, config_hash, config_to_yaml
from promptcot_ray.error_budget import TooManyErrors, check_error_fraction
from promptcot_ray.evaluate.config import EvaluateConfig
from promptcot_ray.evaluate.sets import load_set
from promptcot_ray.evaluate.summary import summarize
from promptcot_ray.llm_stage import HELPER_CPUS, run_llm_stage
from promptcot_ray.model_paths import FINAL_MODEL, with_run_models
from promptcot_ray.resume import finished_of, without_written
from promptcot_ray.solve.stage import (
    BuildSolveRequest,
    CollectSolution,
    SettleSolution,
    check_generation_settings,
    expand_samples,
)
from promptcot_ray.storage import RunDir
from promptcot_ray.table_schemas import EVAL_CARRIED_FIELDS
from promptcot_ray.table_schemas import EVAL_GENERATION_SCHEMA as GENERATION_SCHEMA
from promptcot_ray.table_schemas import EVAL_SAMPLE_SCHEMA as SAMPLE_SCHEMA

logger = logging.getLogger(__name__)

JOB = "evaluate"
STAGE_EVAL = "evaluate_solve"
STAGE_REASONER = "difficulty_reasoning"
CARRIED = tuple(f.name for f in EVAL_CARRIED_FIELDS)  # benchmark, reference, compare
SUMMARY_COLUMNS = [
    R.ID,
    R.STATUS,
    "benchmark",
    "problem_id",
    R.SAMPLE_INDEX,
    "correct",
    "grade_status",
    "tokens_out",
    "finish_reason",
]


class NoItems(RuntimeError):
    """No set had any item with a problem and a reference answer."""


EXPECTED_ERRORS = (NoItems, TooManyErrors)


@dataclass
class EvaluateSummary:
    run_dir: str
    name: str
    benchmarks: dict[str, dict[str, Any]]
    difficulty: dict[str, dict[str, float]] | None = None
    seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)


def eval_name(cfg: EvaluateConfig) -> str:
    if cfg.name:
        return cfg.name
    path = PurePosixPath(cfg.model.model.rstrip("/"))
    # models/<name>/final -> <name>: every trained model's export ends in the same "final"
    base = (path.parent.name if path.name == FINAL_MODEL else path.name) or "model"
    return re.sub(r"[^A-Za-z0-9._-]", "-", base).lstrip(".-") or "model"


class GradeBatch:
    """map_batches callable: add `correct` and `grade_status` (one process pool per actor)."""

    def __init__(self, timeout_s: float) -> None:
        from promptcot_ray.solve.grading import GradingPool

        self.pool = GradingPool(processes=1, timeout_s=timeout_s)

    def __call__(self, batch: pa.Table) -> pa.Table:
        items = list(
            zip(
                batch.column("final_answer").to_pylist(),
                batch.column("reference").to_pylist(),
                batch.column("compare").to_pylist(),
                strict=True,
            )
        )
        grades = self.pool.grade(items)
        batch = batch.append_column("correct", pa.array([g.correct for g in grades]))
        return batch.append_column("grade_status", pa.array([g.status for g in grades]))


def generate(
    cfg: EvaluateConfig,
    llm: LLMConfig,
    items: pa.Table,
    runs: int,
    stage: str,
    run: RunDir,
    rel: str,
) -> pa.Table:
    """Generate the missing (item, run) samples under `rel`; return the finished rows."""
    check_generation_settings(run, rel, llm, cfg.instruction)
    samples = expand_samples(items, runs, llm, stage)
    todo, done = without_written(samples, R.ID, run, rel, R.ID)
    logger.info(
        "%s: %d samples, %d done, %d to generate", rel, samples.num_rows, done, todo.num_rows
    )
    if todo.num_rows:
        steps = (
            BuildSolveRequest(llm, stage, cfg.instruction, CARRIED),
            CollectSolution(llm.max_tokens, CARRIED),
            SettleSolution(GENERATION_SCHEMA),
        )
        rows = todo.select(["problem_id", "problem", "sample_index", *CARRIED])
        run_llm_stage(rows, llm, steps, run, rel, GENERATION_SCHEMA, R.ID, cfg.checkpoint_rows)
    table = run.read_table(rel, [R.ID, R.STATUS, "benchmark", "tokens_out"])
    table = finished_of(table, samples.column(R.ID))
    check_error_fraction(table, cfg.max_error_fraction, stage)
    return table


def grade(cfg: EvaluateConfig, run: RunDir, generations: str, samples: str) -> None:
    """Grade every generation (Ray Data, math-verify pools) into `samples` (rebuilt whole)."""
    import ray

    from promptcot_ray.sinks import IdKeyedParquetSink

    files = [run.path(f) for f in run.list_files(generations, ".parquet")]
    ds = ray.data.read_parquet(files, filesystem=run.fs, num_cpus=HELPER_CPUS)
    graded = ds.map_batches(
        GradeBatch,
        fn_constructor_kwargs={"timeout_s": cfg.grading_timeout_s},
        batch_format="pyarrow",
        batch_size=256,
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=cfg.ray.actor_pools.grading),
        num_cpus=HELPER_CPUS,
    )
    run.delete_dir(samples)
    graded.write_datasink(IdKeyedParquetSink(run, samples, SAMPLE_SCHEMA, R.ID))


def run(cfg: EvaluateConfig) -> EvaluateSummary:
    """Run (or resume) an evaluation; Ray must be connected."""
    started = time.time()
    run_dir = RunDir(cfg.storage.run_dir, cfg.storage)
    run_dir.preflight()
    cfg = with_run_models(cfg, run_dir)
    name = eval_name(cfg)
    base = layout.eval_dir(name)
    stage_marker.begin(run_dir, base)  # samples/ and summary.json are rewritten below
    run_dir.write_text(layout.config_file(base), config_to_yaml(cfg))
    sets = [load_set(spec, cfg.storage, run_dir) for spec in cfg.benchmarks]
    for spec, table in zip(cfg.benchmarks, sets, strict=True):
        logger.info("%s: %d items", spec.name, table.num_rows)
    items = pa.concat_tables(sets)
    if not items.num_rows:
        raise NoItems("no benchmark item has both a problem and a reference answer")

    generated = generate(
        cfg, cfg.model, items, cfg.runs, STAGE_EVAL, run_dir, f"{base}/generations"
    )
    grade(cfg, run_dir, f"{base}/generations", f"{base}/samples")
    graded = run_dir.read_table(f"{base}/samples", SUMMARY_COLUMNS)
    samples = finished_of(graded, generated.column(R.ID))  # this run's samples, once each
    benchmarks = summarize(samples.to_pylist())

    difficulty = None
    if cfg.difficulty:  # solver's solve rate, reasoner's think-block tokens (difficulty.py)
        from promptcot_ray.evaluate.difficulty import measure

        difficulty = measure(cfg, run_dir, items, base, benchmarks)
    seconds = time.time() - started
    summary = EvaluateSummary(
        run_dir=run_dir.uri,
        name=name,
        benchmarks=benchmarks,
        difficulty=difficulty,
        seconds=seconds,
        outputs={
            "samples": run_dir.uri_of(base, "samples"),
            "summary": run_dir.uri_of(base, "summary.json"),
        },
    )
    run_dir.write_json(
        f"{base}/summary.json",
        {
            "model": cfg.model.model,
            "runs": cfg.runs,
            "benchmarks": benchmarks,
            "difficulty": difficulty,
            "reasoner": cfg.reasoner.model if cfg.reasoner else None,
        },
    )
    from promptcot_ray.ledger import StageRecord, append_records

    append_records(
        run_dir,
        [
            StageRecord(
                job=JOB,
                stage=f"{STAGE_EVAL}:{name}",
                rows_in=samples.num_rows,
                rows_out=samples.num_rows,
                tokens_out=int(pc.sum(samples["tokens_out"]).as_py() or 0),
                seconds=seconds,
                model=cfg.model.model,
                extra={k: round(v["accuracy_mean"], 4) for k, v in benchmarks.items()},
            )
        ],
    )
    counts = {"samples": samples.num_rows, "benchmarks": len(benchmarks)}
    stage_marker.commit(run_dir, base, config_hash(cfg), counts)  # last: the commit
    return summary
