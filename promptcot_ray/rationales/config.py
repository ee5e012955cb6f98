"""The rationales job's config: the writer, best-of-n with its scorer, overlap rule."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from promptcot_ray.config import LLMConfig, RayConfig, StorageConfig, _Frozen


class RationalesConfig(_Frozen):
    """The rationales job: (seed, concepts, level) -> rationale -> generator SFT rows."""

    job: Literal["rationales"] = "rationales"
    storage: StorageConfig = StorageConfig()
    ray: RayConfig = RayConfig()
    writer: LLMConfig = Field(description="The model that reverse-engineers each rationale.")
    generator_prompt_format: Literal["chat", "raw"] = Field(
        "chat",
        description="Format of the generator prompt in the SFT rows (and for the scorer): "
        "must equal synthesize's generator.prompt_format so the generator is trained on "
        "the prompt it will be sampled with.",
    )
    max_problem_overlap: float = Field(
        0.8,
        gt=0.0,
        le=1.0,
        description="Reject a rationale when this share of the problem's word 5-grams appear "
        "in it: it restates the problem instead of explaining how to arrive at it.",
    )
    best_of_n: int = Field(
        1,
        ge=1,
        description="Rationales sampled per seed. Above 1, each is scored by log p(rationale | "
        "concepts, level) + log p(problem | concepts, level, rationale) under `scorer` and the "
        "best is kept (PromptCoT 2.0's selection step). 1 = off.",
    )
    scorer: LLMConfig | None = Field(
        None,
        description="The generator model that scores candidates (needed when best_of_n > 1).",
    )
    checkpoint_rows: int = Field(64, ge=1, description="Rows per result file (resume unit).")
    max_error_fraction: float = Field(0.5, ge=0.0, le=1.0, description="See synthesize.")

    @model_validator(mode="after")
    def _check_scorer(self) -> RationalesConfig:
        if self.best_of_n > 1 and self.scorer is None:
            raise ValueError(f"best_of_n={self.best_of_n} needs a scorer model (scorer.model)")
        return self
