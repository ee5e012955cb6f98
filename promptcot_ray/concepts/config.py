"""The concepts job's config: seed sources, the extractor, how concepts become the pool."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from promptcot_ray.config import LLMConfig, RayConfig, StorageConfig, _Frozen


class SeedSource(_Frozen):
    """Where seed problems come from: a file (local or s3://) or a Hugging Face dataset."""

    path: str | None = Field(
        None,
        description="JSONL or Parquet file (or folder of Parquet files), local or s3://.",
    )
    hf_dataset: str | None = Field(None, description="Hugging Face dataset name (needs network).")
    hf_split: str = Field("train", description="Split of the Hugging Face dataset.")
    problem_column: str = Field("problem", description="Column holding the problem text.")
    level_column: str | None = Field(
        "level",
        description="Optional column with the contest level; when a row has a known level it "
        "wins over the level the extractor suggests.",
    )
    limit: int | None = Field(None, ge=1, description="Use only the first N seeds (for trials).")

    @model_validator(mode="after")
    def _one_source(self) -> SeedSource:
        if (self.path is None) == (self.hf_dataset is None):
            raise ValueError("seeds: give exactly one of seeds.path or seeds.hf_dataset")
        return self


class PoolBuildConfig(_Frozen):
    """How extracted concepts become the sampler's pool."""

    embedding: Literal["sentence-transformers", "hashed"] = Field(
        "sentence-transformers",
        description="Concept embedding method (see PoolConfig).",
    )
    embedding_model: str | None = Field(
        None,
        description="sentence-transformers name or path; None = offline all-MiniLM-L6-v2.",
    )
    merge_threshold: float | None = Field(
        None,
        gt=0.0,
        le=1.0,
        description="Merge concepts whose embeddings have cosine similarity at or above this "
        "(e.g. 0.95) into the more frequent one. None: merge only identical normalised text.",
    )


class ConceptsConfig(_Frozen):
    """The concepts job: seed problems -> k foundational concepts each -> the concept pool."""

    job: Literal["concepts"] = "concepts"
    storage: StorageConfig = StorageConfig()
    ray: RayConfig = RayConfig()
    seeds: SeedSource
    extractor: LLMConfig
    k: int = Field(5, ge=1, le=20, description="Concepts asked for per seed problem (method: 5).")
    min_concepts: int = Field(
        3,
        ge=1,
        description="Fewer parsed concepts than this rejects the reply (counted).",
    )
    max_concept_chars: int = Field(200, ge=10, description="Longer list items are dropped.")
    pool: PoolBuildConfig = PoolBuildConfig()
    checkpoint_rows: int = Field(64, ge=1, description="Rows per result file (resume unit).")
    max_error_fraction: float = Field(0.5, ge=0.0, le=1.0, description="See synthesize.")

    @model_validator(mode="after")
    def _check_counts(self) -> ConceptsConfig:
        if self.min_concepts > self.k:
            raise ValueError(f"min_concepts={self.min_concepts} exceeds k={self.k}")
        return self
