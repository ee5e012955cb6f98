"""Every job's config type by job name: what the CLI loads, validates and shows."""

from __future__ import annotations

from pydantic import BaseModel

from promptcot_ray.config import ConceptsConfig, QualityConfig, RationalesConfig, SynthesizeConfig
from promptcot_ray.distill.config import DistillConfig
from promptcot_ray.evaluate.config import EvaluateConfig
from promptcot_ray.pipeline.config import PipelineConfig
from promptcot_ray.train.config import TrainConfig

JOB_CONFIGS: dict[str, type[BaseModel]] = {
    "synthesize": SynthesizeConfig,
    "concepts": ConceptsConfig,
    "rationales": RationalesConfig,
    "quality": QualityConfig,
    "train": TrainConfig,
    "distill": DistillConfig,
    "evaluate": EvaluateConfig,
    "pipeline": PipelineConfig,
}

# The module that runs each job: `run(cfg)`, plus EXPECTED_ERRORS (failures with a clear
# message, not a traceback).
JOB_MODULES: dict[str, str] = {
    "synthesize": "promptcot_ray.synthesis.job",
    "concepts": "promptcot_ray.concepts.job",
    "rationales": "promptcot_ray.rationales.job",
    "quality": "promptcot_ray.quality.job",
    "train": "promptcot_ray.train.job",
    "distill": "promptcot_ray.distill.job",
    "evaluate": "promptcot_ray.evaluate.job",
}
