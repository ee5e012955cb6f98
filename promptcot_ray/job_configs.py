"""Every job's config type by job name: what the CLI loads, validates and shows."""

from __future__ import annotations

from pydantic import BaseModel

from promptcot_ray.config import ConceptsConfig, QualityConfig, RationalesConfig, SynthesizeConfig
from promptcot_ray.distill.config import DistillConfig
from promptcot_ray.evaluate.config import EvaluateConfig
from promptcot_ray.train.config import TrainConfig

JOB_CONFIGS: dict[str, type[BaseModel]] = {
    "synthesize": SynthesizeConfig,
    "concepts": ConceptsConfig,
    "rationales": RationalesConfig,
    "quality": QualityConfig,
    "train": TrainConfig,
    "distill": DistillConfig,
    "evaluate": EvaluateConfig,
}
