"""Stage every model a pipeline config loads, and a pipeline config that loads them staged.

A pipeline names its models in each stage's job config (a file plus `set` overrides), and
hands its own models from stage to stage as `run:models/...`. Staging resolves every stage
as the pipeline would (`build_stages`), stages the models the user named (the hand-offs are
in the run already), and writes the pipeline config back with one `set` override per staged
model, so the stages' YAML files stay as they are.
"""

from __future__ import annotations

import json

from promptcot_ray.model_paths import RUN_PREFIX
from promptcot_ray.pipeline.config import PipelineConfig
from promptcot_ray.pipeline.stages import Stage, build_stages
from promptcot_ray.staging.models import StagedModel, model_fields, stage_fields


def spec_name(cfg: PipelineConfig, stage: Stage) -> str:
    """The pipeline config's field (a StageSpec) that this stage's config comes from."""
    if stage.job == "train":
        return "train_student" if stage.name == f"train-{cfg.student_name}" else "train_generator"
    return stage.job


def pipeline_model_fields(cfg: PipelineConfig) -> list[tuple[str, str]]:
    """("<spec>.<dotted key>", model) for every model a stage loads that the user named,
    each once; rehearsal off, since the staged config is for the real run."""
    real = cfg.model_copy(update={"rehearse": False})
    fields: dict[tuple[str, str], None] = {}
    for stage in build_stages(real):
        if stage.config is None:
            continue
        for key, model in model_fields(stage.config):
            if not model.startswith(RUN_PREFIX):
                fields[(f"{spec_name(cfg, stage)}.{key}", model)] = None
    return list(fields)


def stage_pipeline_models(cfg: PipelineConfig, to: str) -> tuple[dict, list[StagedModel]]:
    """Stage the pipeline's models under `to`; (the pipeline config as a dict, each staged
    model a `set` override of the stages that load it, one StagedModel per model)."""
    results = stage_fields(pipeline_model_fields(cfg), to, cfg.storage)
    data = json.loads(cfg.model_dump_json())
    for result in results:
        for key in result.keys if result.uri else ():
            spec, dotted = key.split(".", 1)
            data[spec]["set"][dotted] = result.uri
    return data, results
