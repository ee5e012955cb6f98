"""The evaluate job's config: the model, the benchmark sets, runs and grading."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from promptcot_ray import benchmarks
from promptcot_ray.config import LLMConfig, RayConfig, StorageConfig, _Frozen
from promptcot_ray.prompts.solve import INSTRUCTION


class EvalSet(_Frozen):
    """One problem set with reference answers: a benchmark or a synthetic set."""

    name: str = Field(description="Short name for tables and rows, e.g. 'math500'.")
    path: str | None = Field(
        None,
        description="JSONL/Parquet file or folder (local, s3://), or a run-directory dataset "
        "such as distill/labels (synthetic problems with pseudo-labels).",
    )
    hf_dataset: str | None = Field(None, description="Hugging Face dataset name.")
    hf_config: str | None = None
    hf_split: str = "test"
    problem_column: str = "problem"
    answer_column: str = Field(
        "answer",
        description="Reference answer column ('label' for distill/labels). GSM8K-style "
        "'... #### 42' and \\boxed{} references are reduced to the final answer.",
    )
    id_column: str | None = Field("id", description="Item id column; absent -> row number.")
    compare: Literal["math", "numeric"] = Field(
        "math", description="math: math-verify equivalence; numeric: numbers compared (GSM8K)."
    )
    limit: int | None = Field(None, ge=1, description="Use only the first N items.")

    @model_validator(mode="after")
    def _one_source(self) -> EvalSet:
        if (self.path is None) == (self.hf_dataset is None):
            raise ValueError(f"benchmarks[{self.name}]: give exactly one of path or hf_dataset")
        return self


# The same table as the quality gates' default benchmarks (benchmarks.py): ids agree.
DEFAULT_EVAL_SETS = tuple(EvalSet(**b.eval_fields()) for b in benchmarks.DEFAULTS)


class EvaluateConfig(_Frozen):
    """The evaluate job: n seeded runs of a model over problem sets, graded by math-verify."""

    job: Literal["evaluate"] = "evaluate"
    storage: StorageConfig = StorageConfig()
    ray: RayConfig = RayConfig()
    name: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Folder under eval/ (default: the model folder's name).",
    )
    model: LLMConfig = Field(
        description="The model evaluated (a path, hub name or run:models/<name>/final). "
        "Method: temperature 0.6, top-p 0.95, up to 32,768 new tokens."
    )
    benchmarks: tuple[EvalSet, ...] = Field(
        DEFAULT_EVAL_SETS,
        description="Problem sets. Default: MATH-500, AIME 2024, AIME 2025, GSM8K from "
        "Hugging Face (needs network or a warm cache; local files work offline).",
    )
    runs: int = Field(8, ge=1, description="Runs per item, each with its own sampling seed.")
    instruction: str = Field(INSTRUCTION, description="Appended to each problem (solve prompt).")
    grading_timeout_s: float = Field(5.0, gt=0, description="Hard limit per answer comparison.")
    difficulty: bool = Field(
        False,
        description="Also report the method's two difficulty measures per set: the solve "
        "rate of `solver` (default: the model) and the mean reasoning tokens (inside the "
        "think block only) of `reasoner` (default: the model).",
    )
    solver: LLMConfig | None = Field(
        None,
        description="A fixed strong model whose solve rate measures difficulty, so sets stay "
        "comparable across students (the paper: Qwen2.5-Math-72B-Instruct). None: the model.",
    )
    solver_runs: int = Field(1, ge=1, description="Runs per item for the solver.")
    reasoner: LLMConfig | None = Field(
        None,
        description="Reasoning model whose mean reasoning tokens (inside <think>...</think>, "
        "not the answer after it) measure difficulty (the paper: DeepSeek-R1-Distill-Qwen-7B).",
    )
    reasoner_runs: int = Field(1, ge=1, description="Runs per item for the reasoner.")
    checkpoint_rows: int = Field(64, ge=1, description="Rows per result file (resume unit).")
    max_error_fraction: float = Field(0.5, ge=0.0, le=1.0, description="See synthesize.")

    @model_validator(mode="after")
    def _check(self) -> EvaluateConfig:
        names = [b.name for b in self.benchmarks]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"benchmarks: give at least one, with unique names; got {names}")
        for name in ("reasoner", "solver"):
            if getattr(self, name) is not None and not self.difficulty:
                raise ValueError(f"{name} is only used with difficulty: true; set difficulty")
        return self
