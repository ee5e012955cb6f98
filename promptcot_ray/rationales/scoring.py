"""Best-of-n rationale scoring with the generator's own prompt logprobs (vLLM).

A candidate rationale r for (concepts c, level l, problem x) is scored by
log p(r | c, l) + log p(x | c, l, r) under the generator, the two terms the method says a
good rationale must make large: natural to derive from the concepts, and precise enough to
recreate the problem. One vLLM request per candidate: the generator prompt plus the tagged
completion, `max_tokens=1`, `prompt_logprobs=0`; the two sums are read off the spans.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Any

from promptcot_ray import records as R
from promptcot_ray.config import LLMConfig
from promptcot_ray.llm.engine import INFERENCE_ERROR_COLUMN
from promptcot_ray.prompts import generator as generator_prompt

SCORE_COLUMNS = ("score_rationale", "score_problem", "score")
_SPANS = ("_span_prompt", "_span_rationale")
# The engine stage reads and overwrites the `prompt` column, which here holds the SFT prompt:
# park it under this name for the scoring request and restore it afterwards.
_PARKED_PROMPT = "_sft_prompt"


@lru_cache(maxsize=4)
def _tokenizer(model: str) -> Any:
    from promptcot_ray.llm.stops import load_tokenizer  # knows the rehearsal model too

    return load_tokenizer(model)


def scoring_tokens(
    tokenizer: Any,
    concepts: list[str],
    level: str,
    rationale: str,
    problem: str,
    prompt_format: str = "chat",
) -> tuple[list[int], int, int]:
    """Token ids of prompt + completion, and where the rationale and problem spans start.

    The prompt is the generator's, in the format it is trained and sampled with.
    """
    prompt = generator_prompt.build_generator_prompt(concepts, level, prompt_format)
    if not isinstance(prompt, str):
        prompt = tokenizer.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
    completion = generator_prompt.format_completion(rationale, problem)
    cut = completion.index(generator_prompt.PROBLEM_BEGIN)

    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False).input_ids

    return (
        ids(prompt + completion),
        len(ids(prompt)),
        len(ids(prompt + completion[:cut])),
    )


def _token_logprob(entry: Any, token_id: int) -> float | None:
    """The logprob of `token_id` in one prompt_logprobs entry (keys may be int or str)."""
    if not entry:
        return None
    info = entry.get(token_id, entry.get(str(token_id)))
    if info is None:
        return None
    return float(info["logprob"] if isinstance(info, dict) else info)


def span_sums(
    logprobs: list[Any], token_ids: list[int], start: int, cut: int
) -> tuple[float, float]:
    """Sum of token logprobs over [start, cut) and [cut, end)."""

    def total(lo: int, hi: int) -> float:
        values = [_token_logprob(logprobs[i], token_ids[i]) for i in range(lo, hi)]
        return math.fsum(v for v in values if v is not None)

    return total(start, cut), total(cut, len(token_ids))


class BuildScoreRequest:
    """Preprocess: a candidate rationale -> its scoring request (prompt logprobs only)."""

    def __init__(self, scorer: LLMConfig, prompt_format: str = "chat") -> None:
        self.model = scorer.source  # the resolved location of a run: model
        self.prompt_format = prompt_format

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in row.items() if k not in ("messages", "sampling_params")}
        out[_PARKED_PROMPT] = out.pop("prompt", None)
        params = {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0}
        if row[R.STATUS] != R.STATUS_OK:  # nothing to score: a one-token dummy request
            return {
                **out,
                "prompt": "x",
                "tokenized_prompt": [0],
                "sampling_params": params,
                _SPANS[0]: 0,
                _SPANS[1]: 0,
            }
        ids, start, cut = scoring_tokens(
            _tokenizer(self.model),
            list(row["concepts"]),
            row["level"],
            row["rationale"],
            row["problem"],
            self.prompt_format,
        )
        return {
            **out,
            "prompt": "",
            "tokenized_prompt": ids,
            "sampling_params": params,
            _SPANS[0]: start,
            _SPANS[1]: cut,
        }


class CollectScore:
    """Postprocess: read the two log-likelihood terms off the prompt logprobs."""

    def __init__(self, carry: tuple[str, ...]) -> None:
        self.carry = carry

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {k: row.get(k) for k in self.carry}
        out["prompt"] = row.get(_PARKED_PROMPT)
        if row[R.STATUS] != R.STATUS_OK:
            return {**out, **dict.fromkeys(SCORE_COLUMNS)}
        ids = list(row["prompt_token_ids"])
        rationale, problem = span_sums(
            list(row["prompt_logprobs"]), ids, int(row[_SPANS[0]]), int(row[_SPANS[1]])
        )
        return {
            **out,
            "score_rationale": rationale,
            "score_problem": problem,
            "score": rationale + problem,
        }


class SettleScore:
    """After the scorer: a failed scoring request leaves the candidate unscored, counted."""

    def __init__(self, carry: tuple[str, ...]) -> None:
        self.carry = carry

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        out = {k: row.get(k) for k in self.carry + SCORE_COLUMNS}
        error = row.get(INFERENCE_ERROR_COLUMN) or ""
        if error:  # failed rows skip postprocess: restore the parked prompt here
            out["prompt"] = row.get(_PARKED_PROMPT)
        if error and row.get(R.STATUS) == R.STATUS_OK:
            out.update(
                dict.fromkeys(SCORE_COLUMNS),
                status=R.STATUS_ERROR,
                reason=R.REASON_RATIONALE_SCORE_ERROR,
                error=R.format_error(error),
            )
        return out
