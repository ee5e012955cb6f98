"""Run the pipeline: each stage in order in one run directory and one Ray, skipping stages
whose outputs are complete for their config now, so a re-run after any failure resumes at
the first unfinished stage, and an edited stage config re-runs that stage and every later
one. Each job keeps its own resume logic, so a stage cut off half-way resumes inside too.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

from promptcot_ray import layout, stage_marker
from promptcot_ray.config import ConfigError, config_to_yaml
from promptcot_ray.job_configs import JOBS
from promptcot_ray.ledger import StageRecord, append_records
from promptcot_ray.pipeline import generator_data
from promptcot_ray.pipeline.config import PipelineConfig
from promptcot_ray.pipeline.stages import (
    Stage,
    build_stages,
    invalidate,
    must_start_over,
    pending,
    select,
)
from promptcot_ray.rehearsal import check_run_mode
from promptcot_ray.storage import RunDir, StorageError
from promptcot_ray.tracking.mlflow_sink import sync as track

logger = logging.getLogger(__name__)
JOB = "pipeline"


class PipelineError(RuntimeError):
    """A stage failed in a known way; the message says which and how to resume."""


@dataclass
class StageOutcome:
    name: str
    status: str  # "ran (<why>)" | "skipped (complete)"
    seconds: float = 0.0


@dataclass
class PipelineSummary:
    run_dir: str
    stages: list[StageOutcome] = field(default_factory=list)
    accept_rates: dict[int, tuple[int, int]] = field(default_factory=dict)  # round: (acc, comb)
    report: str | None = None
    seconds: float = 0.0


def plan(cfg: PipelineConfig, start: str | None = None, only: str | None = None) -> list[Stage]:
    """Resolve every stage's config (fails fast on any bad setting), then pick the selection."""
    return select(build_stages(cfg), start, only)


def listing(cfg: PipelineConfig, run_dir: RunDir) -> list[str]:
    """`--list`: one line per stage, `complete` or `to do (why)`."""
    return [
        f"{stage.name:<32} {'complete' if why is None else f'to do ({why})'}"
        for stage, why in pending(plan(cfg), run_dir)
    ]


def run(cfg: PipelineConfig, start: str | None = None, only: str | None = None) -> PipelineSummary:
    """Run the selected stages; Ray must be connected. --from/--only run their stages even
    when complete (the jobs then resume or skip by their own markers)."""
    stages = plan(cfg, start, only)
    run_dir = RunDir(cfg.storage.run_dir, cfg.storage)
    run_dir.preflight()
    check_run_mode(run_dir, "rehearsal" if cfg.rehearse else "real")  # never mix the two
    run_dir.write_text(layout.config_file(layout.PIPELINE), config_to_yaml(cfg))
    summary = PipelineSummary(run_dir.uri)
    started = time.perf_counter()
    forced = frozenset(s.name for s in stages) if (start or only) else frozenset()
    todo = pending(stages, run_dir, forced)
    for stage, why in todo:  # every stale marker goes before anything runs
        if must_start_over(why):
            invalidate(run_dir, stage)
    for index, (stage, why) in enumerate(todo, 1):
        if why is None:
            logger.info("[%d/%d] %s: complete, skipped", index, len(stages), stage.name)
            summary.stages.append(StageOutcome(stage.name, "skipped (complete)"))
            continue
        logger.info("[%d/%d] %s: running (%s)", index, len(stages), stage.name, why)
        t0 = time.perf_counter()
        result = _run_stage(cfg, stage, run_dir)
        summary.stages.append(StageOutcome(stage.name, f"ran ({why})", time.perf_counter() - t0))
        track(cfg.tracking, run_dir, cfg)  # MLflow, when tracking.mlflow_uri is set
        if stage.job == "report":
            summary.report = result
    summary.accept_rates = record_accept_rates(run_dir, cfg.rounds)
    track(cfg.tracking, run_dir, cfg)
    summary.seconds = time.perf_counter() - started
    return summary


def _run_stage(cfg: PipelineConfig, stage: Stage, run_dir: RunDir) -> Any:
    if stage.job == "generator-data":
        try:
            counts = generator_data.build(run_dir, stage.round, cfg.retrain_with_rationales)
        except generator_data.NoGeneratorData as exc:
            raise PipelineError(f"stage {stage.name} failed: {exc}") from exc
        logger.info("round %d generator data: %s", stage.round, counts)
        return counts
    if stage.job == "report":
        from promptcot_ray.report.job import build_report

        return build_report(run_dir.uri, cfg.storage)  # the YAML's endpoint and region too
    if stage.job == "train" and stage.config.name == cfg.student_name:
        _check_student_data(run_dir)
    spec = JOBS[stage.job]
    module = spec.load()
    # the jobs' typed failures only: any other exception is a bug and keeps its traceback
    expected = (ConfigError, StorageError, *getattr(module, "EXPECTED_ERRORS", ()))
    try:
        result = module.run(stage.config)
    except expected as exc:
        raise PipelineError(
            f"stage {stage.name} failed: {exc}\nFix the cause and re-run the same command: "
            f"the pipeline resumes at {stage.name}."
        ) from exc
    spec.print_summary(result)
    return result


def _check_student_data(run_dir: RunDir) -> None:
    """A distillation that labelled nothing leaves the student nothing to learn from: say
    so, and what to change, instead of the train job's "nothing at distill/sft"."""
    marker = stage_marker.read(run_dir, layout.DISTILL)
    if marker is None:
        return  # the train job's own input check names what is missing
    counts = marker.get("counts", {})
    if counts.get("sft_rows", 1) > 0:
        return
    raise PipelineError(
        f"stage train-student has no data: distill made no SFT rows from its "
        f"{counts.get('problems', 0)} problems ({counts.get('samples', 0)} solutions; no "
        "problem got a confident pseudo-label: see the ledger's pseudo_label line). Give "
        "distill more samples (distill.samples_per_problem), lower distill.min_confidence, "
        "or synthesize more problems, then re-run the same command."
    )


def record_accept_rates(run_dir: RunDir, rounds: int) -> dict[int, tuple[int, int]]:
    """One ledger line per finished round: combinations in, accepted out (the accept rate)."""
    rates, records = {}, []
    for k in range(rounds):
        rel = layout.round_part(k, "stats.json")
        if not run_dir.is_complete(layout.round_dir(k)) or not run_dir.exists(rel):
            continue
        total = run_dir.read_json(rel).get("total", {})  # the round's ledger line
        combinations, accepted = int(total.get("rows_in", 0)), int(total.get("rows_out", 0))
        rates[k] = (accepted, combinations)
        record = StageRecord(job=JOB, stage="accept_rate", rows_in=combinations, rows_out=accepted)
        record.rejected = {"not_accepted": combinations - accepted}
        record.extra = {
            "round": k,
            "accept_rate": round(accepted / combinations, 4) if combinations else None,
        }
        records.append(record)
    if records:
        append_records(run_dir, records)
    return rates
