"""The distill job: problems -> n teacher solutions each -> pseudo-labels -> student SFT rows.

Writes distill/solutions (every sample, valid or rejected with a reason), distill/labels (one
row per problem: label and confidence, or the reason it has none) and distill/sft (prompt =
the solve prompt, completion = an agreeing solution), which `train` reads.
Re-running resumes: samples whose rows exist are not generated again.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from promptcot_ray import layout, stage_marker
from promptcot_ray import records as R
from promptcot_ray.catalog import ACCEPTED, dataset_files
from promptcot_ray.config import ConfigError, config_hash, config_to_yaml
from promptcot_ray.distill.config import DistillConfig
from promptcot_ray.distill.labeling import LabelProblem
from promptcot_ray.error_budget import TooManyErrors, check_error_fraction
from promptcot_ray.ledger import StageRecord, append_records
from promptcot_ray.llm_stage import HELPER_CPUS, run_llm_stage
from promptcot_ray.model_paths import with_run_models
from promptcot_ray.resume import finished_rows, without_written
from promptcot_ray.solve.stage import (
    BuildSolveRequest,
    CollectSolution,
    SettleSolution,
    check_generation_settings,
    expand_samples,
)
from promptcot_ray.sources import read_rows
from promptcot_ray.storage import RunDir
from promptcot_ray.table_schemas import LABEL_SCHEMA, SFT_SCHEMA, solution_schema

logger = logging.getLogger(__name__)

JOB = "distill"
STAGE_SOLVE = "distill_solve"
SOLUTIONS_DIR = layout.SOLUTIONS
LABELS_DIR = layout.LABELS
SFT_DIR = layout.DISTILL_SFT
STAGE_DIR = layout.DISTILL  # the stage's marker: distill/_SUCCESS.json, over labels/ and sft/


class NoProblems(RuntimeError):
    """There is nothing to distill."""


EXPECTED_ERRORS = (NoProblems, TooManyErrors)


@dataclass
class DistillSummary:
    run_dir: str
    problems: int
    samples: int
    valid: int
    labelled: int
    sft_rows: int
    rejected_solutions: dict[str, int] = field(default_factory=dict)
    rejected_problems: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    resumed_samples: int = 0
    outputs: dict[str, str] = field(default_factory=dict)


def load_problems(cfg: DistillConfig, run: RunDir) -> pa.Table:
    """(problem_id, problem): problems/ when the quality job finished, else accepted rows."""
    if cfg.problems != "auto":
        table = read_rows(cfg.problems, cfg.storage, run, "problems")
        if "problem" not in table.schema.names:
            raise ConfigError(f"problems {cfg.problems!r} has no `problem` column")
        if R.ID not in table.schema.names:  # a user's file: ids from the text
            ids = [R.make_id("problem", p) for p in table.column("problem").to_pylist()]
            table = table.append_column(R.ID, pa.array(ids, pa.string()))
    elif run.is_complete(layout.PROBLEMS):
        table = run.read_table(layout.PROBLEMS, columns=[R.ID, "problem"])
    else:
        files = dataset_files(run, ACCEPTED)
        if not files:
            raise NoProblems(
                f"no problems in {run.uri_of(layout.PROBLEMS)} (quality job) nor any accepted rows "
                f"under {run.uri_of('synthesis')}; run synthesize first or set problems: FILE"
            )
        table = pa.concat_tables([run.read_parquet_file(f, [R.ID, "problem"]) for f in files])
        logger.info("problems/ is not complete; distilling %d accepted rows", table.num_rows)
    table = table.select([R.ID, "problem"]).rename_columns(["problem_id", "problem"])
    table = table.filter(pc.invert(pc.is_null(table["problem"])))
    seen: set[str] = set()
    keep = []
    for pid in table["problem_id"].to_pylist():  # one row per problem id
        keep.append(pid not in seen)
        seen.add(pid)
    return table.filter(pa.array(keep, pa.bool_()))


def solve(cfg: DistillConfig, run: RunDir, problems: pa.Table) -> tuple[pa.Array, int]:
    """Generate the missing teacher samples; return (the ids of this config's samples, done
    before)."""
    check_generation_settings(run, SOLUTIONS_DIR, cfg.teacher, cfg.instruction)
    samples = expand_samples(problems, cfg.samples_per_problem, cfg.teacher, STAGE_SOLVE)
    todo, done = without_written(samples, R.ID, run, SOLUTIONS_DIR, R.ID)
    logger.info(
        "%d problems x %d samples: %d done, %d to generate",
        problems.num_rows,
        cfg.samples_per_problem,
        done,
        todo.num_rows,
    )
    if todo.num_rows:
        schema = solution_schema()
        steps = (
            BuildSolveRequest(cfg.teacher, STAGE_SOLVE, cfg.instruction, ()),
            CollectSolution(cfg.teacher.max_tokens, ()),
            SettleSolution(schema),
        )
        rows = todo.select(["problem_id", "problem", "sample_index"])
        run_llm_stage(
            rows, cfg.teacher, steps, run, SOLUTIONS_DIR, schema, R.ID, cfg.checkpoint_rows
        )
    return samples.column(R.ID).combine_chunks(), done


def _of_ids(batch: pa.Table, ids: pa.Array) -> pa.Table:
    return batch.filter(pc.is_in(batch[R.ID], value_set=ids))


def label(cfg: DistillConfig, run: RunDir, ids: pa.Array) -> Any:
    """The materialised per-problem groups (GROUP_SCHEMA) of this config's samples only: a
    problem the quality gates removed since an earlier run must not be labelled."""
    import ray

    files = [run.path(f) for f in run.list_files(SOLUTIONS_DIR, ".parquet")]
    ds = ray.data.read_parquet(files, filesystem=run.fs, num_cpus=HELPER_CPUS)
    ds = ds.map_batches(
        _of_ids, fn_kwargs={"ids": ids}, batch_format="pyarrow", num_cpus=HELPER_CPUS
    )
    return (
        ds.groupby("problem_id")
        .map_groups(
            LabelProblem,
            fn_constructor_kwargs={
                "min_confidence": cfg.min_confidence,
                "min_valid": cfg.min_valid_samples,
                "select": cfg.select,
                "instruction": cfg.instruction,
                "timeout_s": cfg.grading_timeout_s,
            },
            batch_format="pyarrow",
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=cfg.ray.actor_pools.labelling),
            num_cpus=HELPER_CPUS,
        )
        .materialize()
    )


def _write_outputs(run: RunDir, groups: Any) -> tuple[pa.Table, pa.Table]:
    from promptcot_ray.sinks import IdKeyedParquetSink

    for rel in (LABELS_DIR, SFT_DIR):
        run.delete_dir(rel)  # rebuilt whole from solutions: no stale rows from an earlier run
    labels = groups.drop_columns(["sft"])
    labels.write_datasink(IdKeyedParquetSink(run, LABELS_DIR, LABEL_SCHEMA, R.ID))
    sft = groups.flat_map(lambda row: list(row["sft"]), num_cpus=HELPER_CPUS)
    sft.write_datasink(IdKeyedParquetSink(run, SFT_DIR, SFT_SCHEMA, R.ID))
    label_table = run.read_table(LABELS_DIR, [R.STATUS, R.REASON]) or LABEL_SCHEMA.empty_table()
    sft_table = run.read_table(SFT_DIR, [R.ID]) or SFT_SCHEMA.empty_table()
    return label_table, sft_table


def run(cfg: DistillConfig) -> DistillSummary:
    """Run (or resume) distillation; Ray must be connected."""
    started = time.time()
    run_dir = RunDir(cfg.storage.run_dir, cfg.storage)
    run_dir.preflight()
    stage_marker.begin(run_dir, STAGE_DIR)  # labels/ and sft/ are rewritten below
    cfg = with_run_models(cfg, run_dir)
    run_dir.write_text(layout.config_file(STAGE_DIR), config_to_yaml(cfg))
    problems = load_problems(cfg, run_dir)
    if not problems.num_rows:
        raise NoProblems("the problem set is empty")
    ids, done = solve(cfg, run_dir, problems)
    total = len(ids)

    solutions = run_dir.read_table(
        SOLUTIONS_DIR, [R.ID, R.STATUS, R.REASON, "tokens_in", "tokens_out"]
    )
    solutions = solutions.filter(pc.is_in(solutions[R.ID], value_set=ids))
    chosen = finished_rows(solutions, R.ID)  # one row per solution id, retries resolved
    check_error_fraction(chosen, cfg.max_error_fraction, "teacher")
    groups = label(cfg, run_dir, ids)
    label_table, sft_table = _write_outputs(run_dir, groups)

    failed = chosen.filter(pc.fill_null(pc.not_equal(chosen[R.STATUS], R.STATUS_OK), True))
    solution_reasons = Counter(
        {v["values"]: v["counts"] for v in pc.value_counts(failed[R.REASON]).to_pylist()}
    )
    problem_reasons = Counter(x for x in label_table.column(R.REASON).to_pylist() if x is not None)
    valid = chosen.num_rows - failed.num_rows
    labelled = label_table.num_rows - sum(problem_reasons.values())
    seconds = time.time() - started
    model = cfg.teacher.model
    append_records(
        run_dir,
        [
            StageRecord(
                job=JOB,
                stage=STAGE_SOLVE,
                rows_in=chosen.num_rows,
                rows_out=valid,
                rejected=dict(solution_reasons),
                tokens_in=_total(chosen["tokens_in"]),
                tokens_out=_total(chosen["tokens_out"]),
                seconds=seconds,
                model=model,
            ),
            StageRecord(
                job=JOB,
                stage="pseudo_label",
                rows_in=label_table.num_rows,
                rows_out=labelled,
                rejected=dict(problem_reasons),
                model=model,
                extra={"min_confidence": cfg.min_confidence},
            ),
            StageRecord(
                job=JOB,
                stage="distill_sft",
                rows_in=labelled,
                rows_out=sft_table.num_rows,
                model=model,
                extra={"select": cfg.select},
            ),
        ],
    )
    counts = {"problems": problems.num_rows, "samples": total, "sft_rows": sft_table.num_rows}
    stage_marker.commit(run_dir, STAGE_DIR, config_hash(cfg), counts)  # last: the commit
    return DistillSummary(
        run_dir=run_dir.uri,
        problems=problems.num_rows,
        samples=total,
        valid=valid,
        labelled=labelled,
        sft_rows=sft_table.num_rows,
        rejected_solutions=dict(solution_reasons),
        rejected_problems=dict(problem_reasons),
        seconds=seconds,
        resumed_samples=done,
        outputs={
            n: run_dir.uri_of(d)
            for n, d in (("solutions", SOLUTIONS_DIR), ("labels", LABELS_DIR), ("sft", SFT_DIR))
        },
    )


def _total(values: pa.ChunkedArray) -> int:
    return int(pc.sum(values).as_py() or 0)
