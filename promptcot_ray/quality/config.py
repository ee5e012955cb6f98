"""The quality gates' config (the quality job's, and synthesize's `quality:` switch)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from promptcot_ray import benchmarks
from promptcot_ray.config import RayConfig, StorageConfig, _Frozen


class BenchmarkSource(_Frozen):
    """One evaluation set a synthetic problem must not overlap with."""

    name: str = Field(description="Short name used in reasons, e.g. 'math500'.")
    path: str | None = Field(
        None,
        description="JSONL or Parquet file, local or s3:// (works offline).",
    )
    hf_dataset: str | None = Field(
        None,
        description="Hugging Face dataset name (needs network or a warm HF cache; give a "
        "local `path` to work offline).",
    )
    hf_config: str | None = Field(None, description="Hugging Face dataset config, e.g. 'main'.")
    hf_split: str = Field("test", description="Split of the Hugging Face dataset.")
    problem_column: str = Field("problem", description="Column holding the problem text.")
    id_column: str | None = Field(
        "id",
        description="Column holding the item id reported in reasons; when absent, the row "
        "number is used.",
    )

    @model_validator(mode="after")
    def _one_source(self) -> BenchmarkSource:
        if (self.path is None) == (self.hf_dataset is None):
            raise ValueError(f"benchmarks[{self.name}]: give exactly one of path or hf_dataset")
        return self


# The same table as the evaluate job's default sets (benchmarks.py): ids agree.
DEFAULT_BENCHMARKS = tuple(BenchmarkSource(**b.source_fields()) for b in benchmarks.DEFAULTS)


class QualityGates(_Frozen):
    """Exact dedup, near-dedup and decontamination settings (the quality job's, and
    synthesize's `quality:` switch that runs the same gates at the end of a round)."""

    benchmarks: tuple[BenchmarkSource, ...] = Field(
        DEFAULT_BENCHMARKS,
        description="Evaluation sets to decontaminate against. The default names MATH-500, "
        "AIME 2024, AIME 2025 and GSM8K on Hugging Face (needs network); local JSONL files "
        "with a `problem` field work offline.",
    )
    ngram: int = Field(
        13, ge=3, description="Words per decontamination n-gram (PromptCoT 2.0: 13)."
    )
    check_seeds: bool = Field(
        True,
        description="Also remove problems sharing an n-gram with a seed problem (the run's "
        "concepts/seeds), reported as seed_copy.",
    )
    minhash_threshold: float = Field(
        0.8,
        gt=0.0,
        lt=1.0,
        description="Estimated Jaccard similarity of word shingles at or above which two "
        "problems are near-duplicates.",
    )
    num_perm: int = Field(
        128, ge=16, le=1024, description="MinHash permutations (signature length)."
    )
    shingle: int = Field(5, ge=1, description="Words per shingle for near-dedup.")
    block_rows: int = Field(
        2048, ge=16, description="Rows per map_batches batch (memory per task)."
    )

    @model_validator(mode="after")
    def _check_names(self) -> QualityGates:
        names = [b.name for b in self.benchmarks]
        if len(set(names)) != len(names):
            raise ValueError(f"benchmarks: names must be unique, got {names}")
        return self


class QualityConfig(QualityGates):
    """The quality job: accepted problems -> exact dedup, near-dedup, decontamination."""

    job: Literal["quality"] = "quality"
    storage: StorageConfig = StorageConfig()
    ray: RayConfig = RayConfig()
    rounds: tuple[int, ...] | None = Field(
        None,
        description="Rounds whose accepted problems go through the gates, and so on to "
        "distillation (e.g. [1]: only round 1's). None = every round of the run.",
    )
