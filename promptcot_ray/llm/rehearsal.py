"""The rehearsal engine: an instant, deterministic stand-in for every engine call.

`engine: rehearsal` (or `--rehearse`) makes `build_processor` return a `RehearsalProcessor`.
Applied to a Ray Dataset like a ray.data.llm Processor, it runs the job's own preprocess,
writes a well-formed reply for the stage (rehearsal_replies.py) with the fields vLLM rows
carry (generated_text, num_input_tokens, num_generated_tokens; prompt_token_ids and
prompt_logprobs for scoring), then the job's own postprocess, in plain `map` tasks with no
model loaded. Everything around the engine (stages, sinks, finalize, ledger, quality,
labelling, training data, evaluation, report) runs for real, at any size, on CPUs.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from promptcot_ray import records as R
from promptcot_ray.llm import rehearsal_replies as replies
from promptcot_ray.llm.rehearsal_config import RehearsalConfig
from promptcot_ray.prompts import concepts as concept_prompt
from promptcot_ray.prompts import rationale as rationale_prompt
from promptcot_ray.prompts import solve as solve_prompt

RowFn = Callable[[dict[str, Any]], dict[str, Any]]
# the column ray.data.llm sets on failed rows (engine.INFERENCE_ERROR_COLUMN; engine.py
# imports this module, so the name is repeated rather than imported)
INFERENCE_ERROR_COLUMN = "__inference_error__"
# A stand-in step is CPU-bound Python: one CPU each, so a CPU cluster runs one per core.
# At the helper stages' 0.2, Ray Data ran 40 tasks on an 8-CPU node and started a Python
# worker for each; measured on 2 cores, 2,000 rehearsed combinations took 118 s that way
# and 67 s this way (benchmarks/README.md).
STAND_IN_CPUS = 1.0
_JUDGE_VERSION = re.compile(r"^judge_(\d+)_prompt_version$")
# request fields that ask for JSON-schema output (engine.with_json_schema; OpenAI style)
_SCHEMA_KEYS = ("structured_outputs", "guided_decoding", "response_format")


class RehearsalError(RuntimeError):
    """A row the stand-in cannot tell the stage of: a new stage it must be taught (a bug)."""


def reply_kind(row: dict[str, Any]) -> tuple[str, str]:
    """(kind, id) of a preprocessed row, from what its Build step set (never the prompt).

    Scoring requests ask for prompt logprobs; judge rows carry judge_<i>_prompt_version
    (the highest i is the judge being asked); drafts carry generator_prompt_version; the
    others name their prompt in the lineage `prompt_version`.
    """
    if "prompt_logprobs" in (row.get("sampling_params") or {}):
        return "score", str(row.get(R.ID) or row.get("draft_id") or "")
    judges = [int(m.group(1)) for key in row if (m := _JUDGE_VERSION.match(key))]
    if judges:
        return "judge", str(row[f"judge_{max(judges)}_id"])
    if "generator_prompt_version" in row:
        return "draft", str(row["draft_id"])
    version = row.get(R.PROMPT_VERSION)
    kinds = {
        concept_prompt.VERSION: "concepts",
        rationale_prompt.VERSION: "rationale",
        solve_prompt.VERSION: "solution",
    }
    if version in kinds:
        return kinds[version], str(row[R.ID])
    raise RehearsalError(
        f"rehearsal cannot tell which stage a row with columns {sorted(row)} belongs to "
        f"(prompt_version={version!r}); teach llm/rehearsal.py's reply_kind this stage"
    )


def wants_json(params: dict[str, Any]) -> bool:
    """Whether a request asks the engine for structured (JSON schema) output."""
    return any(params.get(key) for key in _SCHEMA_KEYS)


def input_tokens(cfg: RehearsalConfig, row: dict[str, Any]) -> int:
    """Reported prompt tokens: the token ids if given, else characters / chars_per_token."""
    if row.get("tokenized_prompt"):
        return len(row["tokenized_prompt"])
    chars = len(str(row.get("prompt") or ""))
    chars += sum(len(str(m.get("content", ""))) for m in row.get("messages") or [])
    return max(1, int(chars / cfg.chars_per_input_token))


def _score_fields(row: dict[str, Any], row_id: str) -> dict[str, Any]:
    """Prompt token ids and one logprob per token, as vLLM returns with prompt_logprobs=0."""
    ids = list(row.get("tokenized_prompt") or [0])
    logprobs = [None] + [
        {tid: {"logprob": -4 * replies.unit("logprob", row_id, i)}} for i, tid in enumerate(ids)
    ][1:]
    return {"prompt_token_ids": ids, "prompt_logprobs": logprobs}


def rehearse_reply(cfg: RehearsalConfig, row: dict[str, Any]) -> dict[str, Any]:
    """The engine fields of one preprocessed row: text, token counts (and score fields)."""
    kind, row_id = reply_kind(row)
    params = row.get("sampling_params") or {}
    max_tokens = int(params.get("max_tokens") or 1)
    fields: dict[str, Any] = {}
    if kind == "score":
        text, out = "", 1
        fields = _score_fields(row, row_id)
    elif max_tokens == 1:  # a skipped row's one-token dummy request
        text, out = "x", 1
    elif kind == "concepts":
        text = replies.concept_reply(row_id, 5)
        out = replies.tokens(cfg, cfg.concept_tokens, max_tokens, row_id)
    elif kind == "rationale":
        text = replies.rationale_reply(row_id, [str(c) for c in row.get("concepts") or []])
        out = replies.tokens(cfg, cfg.rationale_tokens, max_tokens, row_id)
    elif kind == "draft":
        text, out = replies.draft_reply(cfg, row, row_id, max_tokens)
    elif kind == "judge":
        text = replies.judge_reply(cfg, row_id, wants_json(params))
        out = replies.tokens(cfg, cfg.judge_tokens, max_tokens, row_id)
    else:
        text, out = replies.solution_reply(cfg, row, row_id, max_tokens)
    return {
        "generated_text": text,
        "num_input_tokens": input_tokens(cfg, row),
        "num_generated_tokens": out,
        **fields,
    }


class RehearseRows:
    """One map step: preprocess -> stand-in reply -> postprocess (or a counted engine error)."""

    def __init__(self, cfg: RehearsalConfig, preprocess: RowFn, postprocess: RowFn) -> None:
        self.cfg, self.preprocess, self.postprocess = cfg, preprocess, postprocess

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        request = self.preprocess(row)
        _, row_id = reply_kind(request)
        failed = replies.unit("engine_error", row_id) < self.cfg.engine_error_share
        reply = {} if failed else rehearse_reply(self.cfg, request)
        # request-only columns go, as the engine stages drop them (mixed dicts break Arrow)
        request = {k: v for k, v in request.items() if k not in ("messages", "sampling_params")}
        if failed:  # as ray.data.llm with should_continue_on_error: postprocess is skipped
            return {**request, INFERENCE_ERROR_COLUMN: "RehearsalError: rehearsed engine error"}
        return self.postprocess({**request, **reply})


class RehearsalProcessor:
    """Stands where a ray.data.llm Processor stands: `processor(ds)` returns the replies."""

    def __init__(self, cfg: RehearsalConfig, preprocess: RowFn, postprocess: RowFn) -> None:
        self.rows = RehearseRows(cfg, preprocess, postprocess)

    def __call__(self, ds: Any) -> Any:
        return ds.map(self.rows, num_cpus=STAND_IN_CPUS)
