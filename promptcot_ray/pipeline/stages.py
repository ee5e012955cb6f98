"""The pipeline's stages in order, each with its validated job config and its done-check.

Everything is resolved before the first stage runs, so a bad setting in the last stage
fails in seconds, not after hours of synthesis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from promptcot_ray.model_paths import export_dir
from promptcot_ray.pipeline import generator_data
from promptcot_ray.pipeline.config import PipelineConfig
from promptcot_ray.quality.outputs import KEPT_DIR
from promptcot_ray.storage import RunDir

REPORT_INDEX = "report/index.html"


@dataclass(frozen=True)
class Stage:
    name: str  # what --from / --only take
    job: str  # a job of promptcot_ray.job_configs, or "generator-data" / "report"
    config: Any  # the job's validated config (None for the pipeline's own steps)
    done: Callable[[RunDir], bool]
    round: int | None = None


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

    def complete(rel: str) -> Callable[[RunDir], bool]:
        return lambda run: run.is_complete(rel)

    def train(spec_name: str, name: str, extra: dict[str, Any], round_index: int | None) -> Stage:
        spec = getattr(cfg, spec_name)
        config = spec.load("train", {**shared, "name": name, **extra})
        return Stage(
            f"train-{name}", "train", config, complete(export_dir(name)), round=round_index
        )

    stages = [
        Stage(
            "concepts", "concepts", cfg.concepts.load("concepts", shared), complete("concepts/pool")
        ),
        Stage(
            "rationales",
            "rationales",
            cfg.rationales.load("rationales", shared),
            complete("rationales"),
        ),
        train("train_generator", generator_name(cfg, 0), {"data.source": "rationales/data"}, 0),
    ]
    base_seed = cfg.synthesize.load("synthesize", shared).combinations.seed
    for k in range(cfg.rounds):
        if k > 0:
            data = generator_data.data_dir(k)
            stages.append(Stage(f"generator-data-{k}", "generator-data", None, complete(data), k))
            extra = {"base_model": _model(generator_name(cfg, k - 1)), "data.source": data}
            stages.append(train("train_generator", generator_name(cfg, k), extra, k))
        forced = {
            **shared,
            "round": k,
            "pool.source": "run",
            "generator.model": _model(generator_name(cfg, k)),
            "combinations.seed": base_seed + k,  # each round explores new combinations
        }
        config = cfg.synthesize.load("synthesize", forced)
        stages.append(
            Stage(f"synthesize-{k}", "synthesize", config, complete(f"synthesis/round-{k}"), k)
        )
    stages.append(
        Stage("quality", "quality", cfg.quality.load("quality", shared), complete(KEPT_DIR))
    )
    stages.append(
        Stage("distill", "distill", cfg.distill.load("distill", shared), complete("distill"))
    )
    stages.append(train("train_student", cfg.student_name, {"data.source": "distill/sft"}, None))
    evaluate = cfg.evaluate.load("evaluate", {**shared, "model.model": _model(cfg.student_name)})
    stages.append(Stage("evaluate", "evaluate", evaluate, _evaluated(evaluate)))
    if cfg.report:
        stages.append(Stage("report", "report", None, lambda run: False))  # cheap: always fresh
    return stages


def _evaluated(config: Any) -> Callable[[RunDir], bool]:
    from promptcot_ray.evaluate.job import eval_name

    summary = f"eval/{eval_name(config)}/summary.json"
    return lambda run: run.exists(summary)


def select(stages: list[Stage], start: str | None, only: str | None) -> list[Stage]:
    """The stages to consider: all, from `start` on, or just `only` (names as listed)."""
    names = [s.name for s in stages]
    for flag, name in (("--from", start), ("--only", only)):
        if name is not None and name not in names:
            raise ValueError(f"{flag} {name!r}: no such stage; the stages are {', '.join(names)}")
    if only is not None:
        return [s for s in stages if s.name == only]
    if start is not None:
        return stages[names.index(start) :]
    return stages
