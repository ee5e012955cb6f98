"""The pipeline's stages in order, each with its validated job config and its done-check.

Everything is resolved before the first stage runs, so a bad setting in the last stage
fails in seconds, not after hours of synthesis. A stage is done only when its marker exists
and holds the hash of the config it would run with now (`stage_marker.why_not_done`); once
one stage runs, every later one runs too, because its inputs change.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from promptcot_ray import layout, stage_marker
from promptcot_ray.config import ConfigError, config_hash
from promptcot_ray.model_paths import export_dir
from promptcot_ray.pipeline import generator_data
from promptcot_ray.pipeline.config import PipelineConfig
from promptcot_ray.storage import RunDir

REPORT_INDEX = layout.REPORT_INDEX
ALWAYS = "always rebuilt"
FORCED = "forced by --from/--only"
# Reasons a stage's old outputs are stale, not merely unfinished: it starts over. A marker
# without a hash (written before markers held one) only re-runs its own stage, which
# resumes by row ids: upgrading does not throw a finished run's later stages away.
STALE = (stage_marker.CONFIG_CHANGED, stage_marker.UNREADABLE)
UPSTREAM = " re-runs"  # "<earlier stage> re-runs": this stage's inputs change


@dataclass(frozen=True)
class Stage:
    name: str  # what --from / --only take
    job: str  # a job of promptcot_ray.job_configs, or "generator-data" / "report"
    config: Any  # the job's validated config (None for the pipeline's own steps)
    marker: str | None  # the folder whose _SUCCESS.json completes it; None: always runs
    config_hash: str | None  # what that marker must hold for the stage to be skipped
    round: int | None = None
    resets: tuple[str, ...] = ()  # also deleted when the stage starts over (checkpoints)

    def why_not_done(self, run: RunDir) -> str | None:
        """None when the stage is complete for its config now; else why it must run."""
        if self.marker is None or self.config_hash is None:
            return ALWAYS
        return stage_marker.why_not_done(run, self.marker, self.config_hash)


def _model(name: str) -> str:
    return f"run:{export_dir(name)}"


def generator_name(cfg: PipelineConfig, round_index: int) -> str:
    return cfg.generator_name if round_index == 0 else f"{cfg.generator_name}-round-{round_index}"


def build_stages(cfg: PipelineConfig) -> list[Stage]:
    """Every stage of the run, configs validated."""
    shared = {
        "storage": cfg.storage.model_dump(mode="json"),
        "ray": cfg.ray.model_dump(mode="json"),
    }

    def job(name: str, kind: str, config: Any, marker: str, k: int | None = None) -> Stage:
        if cfg.rehearse:  # every engine a stand-in, every training the tiny model
            from promptcot_ray.rehearsal import rehearsed

            config = rehearsed(config)
        return Stage(name, kind, config, marker, config_hash(config), round=k)

    def train(spec_name: str, name: str, extra: dict[str, Any], round_index: int | None) -> Stage:
        config = getattr(cfg, spec_name).load("train", {**shared, "name": name, **extra})
        # checkpoints: train.job.CHECKPOINTS; stale ones must not be resumed from
        resets = (layout.model_file(name, layout.CHECKPOINTS),)
        stage = job(f"train-{name}", "train", config, export_dir(name), round_index)
        return replace(stage, resets=resets)

    stages = [
        job("concepts", "concepts", cfg.concepts.load("concepts", shared), layout.POOL),
        job(
            "rationales", "rationales", cfg.rationales.load("rationales", shared), layout.RATIONALES
        ),
        train("train_generator", generator_name(cfg, 0), {"data.source": layout.RATIONALE_DATA}, 0),
    ]
    base_seed = cfg.synthesize.load("synthesize", shared).combinations.seed
    for k in range(cfg.rounds):
        if k > 0:
            data = generator_data.data_dir(k)
            key = generator_data.settings_hash(k, cfg.retrain_with_rationales)
            stages.append(Stage(f"generator-data-{k}", "generator-data", None, data, key, k))
            extra = {"base_model": _model(generator_name(cfg, k - 1)), "data.source": data}
            stages.append(train("train_generator", generator_name(cfg, k), extra, k))
        forced = {
            **shared,
            "round": k,
            "pool.source": "run",
            "generator.model": _model(generator_name(cfg, k)),
            "combinations.seed": base_seed + k,  # each round explores new combinations
        }
        if cfg.round_targets is not None:
            forced["quota.target_accepted"] = cfg.round_targets[k]
        config = cfg.synthesize.load("synthesize", forced)
        stages.append(job(f"synthesize-{k}", "synthesize", config, layout.round_dir(k), k))
    gated = {"rounds": [cfg.rounds - 1]} if cfg.distill_rounds == "last" else {}
    quality = cfg.quality.load("quality", {**shared, **gated})
    stages.append(job("quality", "quality", quality, layout.PROBLEMS))
    stages.append(job("distill", "distill", cfg.distill.load("distill", shared), layout.DISTILL))
    student_data = {"data.source": layout.DISTILL_SFT}
    stages.append(train("train_student", cfg.student_name, student_data, None))
    evaluate = cfg.evaluate.load("evaluate", {**shared, "model.model": _model(cfg.student_name)})
    if evaluate.name is None:  # eval/<student>/, also rehearsed (the model is `rehearsal` then)
        evaluate = evaluate.model_copy(update={"name": cfg.student_name})
    stages.append(job("evaluate", "evaluate", evaluate, _eval_dir(evaluate)))
    if cfg.report:
        stages.append(Stage("report", "report", None, None, None))  # cheap: always fresh
    return stages


def _eval_dir(config: Any) -> str:
    from promptcot_ray.evaluate.job import eval_name

    return layout.eval_dir(eval_name(config))


def pending(
    stages: list[Stage], run: RunDir, forced: frozenset[str] = frozenset()
) -> list[tuple[Stage, str | None]]:
    """Each stage with why it runs (None: complete, skipped). After the first stage that
    runs, every later one runs too: its inputs are about to change (not after an old marker
    without a hash: that stage re-runs and resumes by row ids)."""
    out: list[tuple[Stage, str | None]] = []
    first: str | None = None
    for stage in stages:
        why = FORCED if stage.name in forced else stage.why_not_done(run)
        if why is None and first is not None:
            why = first + UPSTREAM
        if why not in (None, stage_marker.NO_HASH) and first is None and stage.marker:
            first = stage.name
        out.append((stage, why))
    return out


def invalidate(run: RunDir, stage: Stage) -> None:
    """Delete a stale stage's marker (and resets) before anything runs: a run killed later
    then still sees it as not done, and its job starts over instead of skipping itself."""
    if stage.marker is not None:
        stage_marker.begin(run, stage.marker)
    for rel in stage.resets:
        run.delete_dir(rel)


def must_start_over(why: str | None) -> bool:
    """Stale outputs (config changed, or an upstream stage re-runs), not unfinished ones."""
    return why is not None and (why in STALE or why.endswith(UPSTREAM))


def select(stages: list[Stage], start: str | None, only: str | None) -> list[Stage]:
    """The stages to consider: all, from `start` on, or just `only` (names as listed)."""
    names = [s.name for s in stages]
    for flag, name in (("--from", start), ("--only", only)):
        if name is not None and name not in names:
            raise ConfigError(f"{flag} {name!r}: no such stage; the stages are {', '.join(names)}")
    if only is not None:
        return [s for s in stages if s.name == only]
    if start is not None:
        return stages[names.index(start) :]
    return stages
