"""Make a plan: load the configs, size every stage for the target, price each one."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from promptcot_ray.config import read_yaml_mapping
from promptcot_ray.plan.configs import JobFile, PlanError, is_pipeline_config, load_job_files
from promptcot_ray.plan.estimate import StageEstimate, combinations_needed, estimate_stage
from promptcot_ray.plan.figures import ThroughputFigures, Workload, load_figures
from promptcot_ray.plan.pipeline import load_pipeline, rounds_line, stage_context
from promptcot_ray.plan.stages import BUILDERS, Context, Sizes, run_order


@dataclass(frozen=True)
class Plan:
    """Every stage's estimate, in run order, and what the run as a whole needs."""

    target: int
    sizes: Sizes
    figures: ThroughputFigures
    stages: tuple[StageEstimate, ...]
    skipped: tuple[str, ...] = ()  # pipeline configs: they name job configs, not a job
    notes: tuple[str, ...] = ()  # a pipeline plan: each round's target, what is distilled

    @property
    def bounding(self) -> StageEstimate:
        """The stage with the longest wall time: where more replicas pay off most."""
        return max(self.stages, key=lambda s: s.wall_s)

    @property
    def total_wall_s(self) -> float:
        """Stages run one after another: each reads what the previous one wrote."""
        return sum(s.wall_s for s in self.stages)

    @property
    def total_gpu_hours(self) -> float:
        return sum(s.gpu_hours for s in self.stages)

    @property
    def peak_gpus(self) -> int:
        return max((s.gpus for s in self.stages), default=0)


def run_sizes(files: list[JobFile], target: int, wl: Workload) -> Sizes:
    """Rows at each hand-off: seeds, combinations, accepted, kept, labelled, SFT rows."""
    if target < 1:
        raise PlanError(f"target {target} must be at least 1 accepted problem")
    seeds = wl.seeds
    distill = None
    for f in files:
        if f.job == "concepts" and f.cfg.seeds.limit:
            seeds = f.cfg.seeds.limit
        if f.job == "distill":
            distill = f.cfg
    problems = math.ceil(target * wl.quality_keep_rate)
    labelled = math.ceil(problems * wl.label_keep_rate)
    samples = distill.samples_per_problem if distill else 1
    per_problem = samples * wl.agree_share if distill and distill.select == "all" else 1
    return Sizes(
        seeds=seeds,
        combinations=combinations_needed(target, wl.accept_rate),
        accepted=target,
        problems=problems,
        labelled=labelled,
        samples_per_problem=samples,
        sft_rows=math.ceil(labelled * max(1.0, per_problem)),
    )


def _figures(
    throughput: Path | None, accept_rate: float | None, params_b: list[str] | None
) -> ThroughputFigures:
    """Measured figures (or defaults) with the command line's accept rate and model sizes."""
    figures = load_figures(throughput)
    sizes = dict(figures.params_b)
    for text in params_b or []:
        name, eq, value = text.rpartition("=")
        try:
            size = float(value)
        except ValueError:
            size = 0.0
        if not eq or not name or not size > 0:
            raise PlanError(f"--params-b {text!r}: expected MODEL=BILLIONS, e.g. /models/judge=70")
        sizes[name] = size
    workload = figures.workload
    if accept_rate is not None:
        if not 0 < accept_rate <= 1:
            raise PlanError(f"--accept-rate {accept_rate}: must be in (0, 1]")
        workload = workload.model_copy(update={"accept_rate": accept_rate})
    return figures.model_copy(update={"params_b": sizes, "workload": workload})


def make_plan(
    configs: list[Path],
    target: int | None = None,
    accept_rate: float | None = None,
    throughput: Path | None = None,
    params_b: list[str] | None = None,
    overrides: list[str] | None = None,
) -> Plan:
    """Load and validate the configs, size every stage for `target` accepted problems
    (default 400,000), and price each with the throughput figures; PlanError explains any
    input it refuses. One pipeline config alone is priced stage by stage as it runs."""
    figures = _figures(throughput, accept_rate, params_b)
    if len(configs) == 1 and is_pipeline_config(read_yaml_mapping(configs[0], error=PlanError)):
        return make_pipeline_plan(Path(configs[0]), target, figures, overrides)
    target = 400_000 if target is None else target
    loaded, skipped = load_job_files(list(configs), overrides)
    skipped += [f.path for f in loaded if f.job not in BUILDERS]
    files = sorted((f for f in loaded if f.job in BUILDERS), key=run_order)
    if not files:
        raise PlanError(f"no job configs to price among {[str(p) for p in configs]}")
    sizes = run_sizes(files, target, figures.workload)
    base_models = {f.cfg.name: f.cfg.base_model for f in files if f.job == "train"}
    ctx = Context(sizes=sizes, figures=figures, base_models=base_models)
    stages = tuple(estimate_stage(BUILDERS[f.job](f, ctx), figures) for f in files)
    return Plan(target, sizes, figures, stages, tuple(str(p) for p in skipped))


def make_pipeline_plan(
    path: Path, target: int | None, figures: ThroughputFigures, overrides: list[str] | None
) -> Plan:
    """Every stage of a pipeline config in run order: each round's synthesis at its own
    target, each retraining on the round before it, distillation on what goes on."""
    run = load_pipeline(path, target, overrides, frozenset(BUILDERS))
    files = [s.file for s in run.stages]
    sizes = run_sizes(files, run.distilled, figures.workload)
    base_models = {f.cfg.name: f.cfg.base_model for f in files if f.job == "train"}
    ctx = Context(sizes=sizes, figures=figures, base_models=base_models)
    stages = tuple(
        estimate_stage(BUILDERS[s.file.job](s.file, stage_context(s, run, ctx)), figures)
        for s in run.stages
    )
    notes = (rounds_line(run, figures.workload.accept_rate), *run.notes)
    sizes = replace(
        sizes,
        combinations=sum(
            combinations_needed(t, figures.workload.accept_rate) for t in run.round_targets
        ),
    )
    return Plan(run.distilled, sizes, figures, stages, notes=notes)
