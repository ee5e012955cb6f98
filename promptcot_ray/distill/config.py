"""The distill job's config: teacher, samples per problem, pseudo-label and SFT-row rules."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from promptcot_ray.config import LLMConfig, RayConfig, StorageConfig, _Frozen
from promptcot_ray.prompts.solve import INSTRUCTION


class DistillConfig(_Frozen):
    """The distill job: problems -> teacher solutions -> pseudo-labels -> student SFT rows."""

    job: Literal["distill"] = "distill"
    storage: StorageConfig = StorageConfig()
    ray: RayConfig = RayConfig()
    problems: str = Field(
        "auto",
        description="'auto': problems/ (the quality job's output) when complete, else every "
        "round's accepted rows. Or a run-directory dataset / JSONL or Parquet file with "
        "`id` and `problem` columns.",
    )
    teacher: LLMConfig = Field(
        description="The reasoning model (long CoT in <think> ... </think>, answer in "
        "\\boxed{}); method: temperature 0.6, top-p 0.95, up to 32k new tokens."
    )
    samples_per_problem: int = Field(8, ge=1, description="Teacher solutions per problem.")
    instruction: str = Field(INSTRUCTION, description="Appended to each problem (solve prompt).")
    min_confidence: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Keep a problem only when its strict-majority answer is at least this "
        "share of ALL its samples (cut-off and malformed ones count against it).",
    )
    min_valid_samples: int = Field(
        2,
        ge=1,
        description="Label a problem only when at least this many samples are valid "
        "(finished, with a boxed answer): one lone answer is no vote.",
    )
    select: Literal["shortest", "random", "all"] = Field(
        "random",
        description="Which agreeing solutions become SFT rows: one at random (seeded by the "
        "problem id, so reruns agree; the default, as not to bias toward short reasoning), "
        "all of them, or the shortest.",
    )
    grading_timeout_s: float = Field(
        5.0, gt=0, description="Per-comparison limit when grouping answers by equivalence."
    )
    checkpoint_rows: int = Field(64, ge=1, description="Rows per result file (resume unit).")
    max_error_fraction: float = Field(0.5, ge=0.0, le=1.0, description="See synthesize.")

    @model_validator(mode="after")
    def _check_votes(self) -> DistillConfig:
        if self.min_valid_samples > self.samples_per_problem:
            raise ValueError(
                f"min_valid_samples={self.min_valid_samples} exceeds samples_per_problem="
                f"{self.samples_per_problem}: no problem could be labelled; lower it"
            )
        return self
