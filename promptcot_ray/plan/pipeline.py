"""Price a pipeline config: its stages exactly as the pipeline builds them, every
rejection-sampling round at its own target and the generator retraining between rounds.

The stages come from `pipeline.stages.build_stages`, the function the pipeline itself runs,
so the plan and the run cannot disagree on which jobs run with which settings.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from promptcot_ray.config import ConfigError, load_config
from promptcot_ray.plan.configs import JobFile, PlanError, split_overrides
from promptcot_ray.plan.estimate import combinations_needed
from promptcot_ray.plan.stages import Context, Sizes


@dataclass(frozen=True)
class RoundStage:
    """One priced stage of the pipeline and the synthesis round it belongs to."""

    file: JobFile
    round: int | None


@dataclass(frozen=True)
class PipelineRun:
    """What the pipeline runs: its stages, each round's accepted target, what is distilled."""

    stages: tuple[RoundStage, ...]
    round_targets: tuple[int, ...]
    distilled: int  # accepted problems that go on to quality and distillation
    retrain_with_rationales: bool
    notes: tuple[str, ...]


def split_target(target: int, rounds: int) -> tuple[int, ...]:
    """`target` accepted problems over `rounds` rounds, as even as whole numbers allow."""
    base, extra = divmod(target, rounds)
    return tuple(base + (1 if k < extra else 0) for k in range(rounds))


def load_pipeline(
    path: Path, target: int | None, overrides: list[str] | None, jobs: frozenset[str]
) -> PipelineRun:
    """Validate the pipeline config (overrides as `<file stem>.key=value`) and list the
    stages the planner prices, with each round's target."""
    from promptcot_ray.pipeline.config import PipelineConfig
    from promptcot_ray.pipeline.stages import build_stages

    routed = split_overrides(overrides or [], [path.stem])
    try:
        cfg = load_config(PipelineConfig, path, routed[path.stem])
        stages = build_stages(cfg)
    except ConfigError as exc:
        raise PlanError(f"{path}: {exc}") from None
    notes: list[str] = []
    if cfg.round_targets is not None:
        targets = tuple(cfg.round_targets)
        if target is not None and target != sum(targets):
            raise PlanError(
                f"--target {target:,}: the pipeline's round_targets {list(targets)} add up to "
                f"{sum(targets):,}; drop --target or change round_targets"
            )
        notes.append(f"round targets from the pipeline config: {list(targets)}")
    else:
        targets = split_target(target or 400_000, cfg.rounds)
        notes.append(f"no round_targets: {sum(targets):,} accepted split over {cfg.rounds} rounds")
    distilled = sum(targets) if cfg.distill_rounds == "all" else targets[-1]
    notes.append(
        f"distilled: {'every round' if cfg.distill_rounds == 'all' else 'the last round'}'s "
        f"accepted problems ({distilled:,})"
    )
    priced = tuple(
        RoundStage(JobFile(s.name, s.job, path, s.config), s.round) for s in stages if s.job in jobs
    )
    return PipelineRun(priced, targets, distilled, cfg.retrain_with_rationales, tuple(notes))


def stage_context(stage: RoundStage, run: PipelineRun, ctx: Context) -> Context:
    """The sizes one stage sees: a round's synthesis its own target, a retraining the
    previous round's accepted rows (and the rationales), every other stage the run's."""
    sizes: Sizes = ctx.sizes
    k = stage.round
    if stage.file.job == "synthesize" and k is not None:
        rate = ctx.workload.accept_rate
        accepted = run.round_targets[k]
        sizes = replace(sizes, accepted=accepted, combinations=combinations_needed(accepted, rate))
        return replace(ctx, sizes=sizes)
    if stage.file.job == "train" and k:  # a later round's generator: the accepted rows
        rows = run.round_targets[k - 1] + (sizes.seeds if run.retrain_with_rationales else 0)
        return replace(ctx, generator_rows=rows)
    return ctx


def rounds_line(run: PipelineRun, accept_rate: float) -> str:
    """Each round's target and the combinations it is priced for, on one line."""
    rounds = ", ".join(
        f"round {k} {t:,} accepted from ~{combinations_needed(t, accept_rate):,} combinations"
        for k, t in enumerate(run.round_targets)
    )
    return f"{len(run.round_targets)} rounds: {rounds}"
