"""Row functions around the LLM processors of the synthesize job.

Each is a small picklable class (its constructor takes only what it needs) so it can be
unit-tested without Ray or a GPU. A ray.data.llm processor runs every row it is given, so a
draft that failed to parse still passes through the judges: it gets a one-token dummy
request and is marked skipped. That keeps generation and judging in one streaming pipeline;
with a trained generator such rows are rare, and the tiny waste beats materialising.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from promptcot_ray import records as R
from promptcot_ray.config import LLMConfig
from promptcot_ray.llm.engine import INFERENCE_ERROR_COLUMN, sampling_params, with_json_schema
from promptcot_ray.parsing import parse_draft, parse_judgement
from promptcot_ray.parsing.judgement_json import parse_judgement_json
from promptcot_ray.prompts import generator as generator_prompt
from promptcot_ray.prompts import judge as judge_prompt
from promptcot_ray.synthesis.config import JudgeConfig
from promptcot_ray.table_schemas import (
    JUDGE_FIELD_TYPES,
    RESULT_COMBINATION_FIELDS,
    RESULT_DRAFT_FIELDS,
    judge_column,
)

if TYPE_CHECKING:
    from promptcot_ray.synthesis.cascade import Cascade

COMBINATION_COLUMNS = tuple(name for name, _ in RESULT_COMBINATION_FIELDS)
DRAFT_COLUMNS = tuple(name for name, _ in RESULT_DRAFT_FIELDS)
JUDGE_FIELDS = tuple(JUDGE_FIELD_TYPES)  # id, model, ..., tokens_out: judge_<i>_<field>
SKIP_MESSAGES = [{"role": "user", "content": "skip"}]


def judge_columns(num_judges: int) -> tuple[str, ...]:
    return tuple(judge_column(i, f) for i in range(num_judges) for f in JUDGE_FIELDS)


def _carry(row: dict[str, Any], columns: tuple[str, ...]) -> dict[str, Any]:
    return {c: row.get(c) for c in columns}


class BuildGenerationRequest:
    """Preprocess for the generator: concepts + level -> its prompt and sampling params.

    `prompt_format` 'chat' sends messages (the engine applies the chat template); 'raw'
    sends one plain text. `stop_token_ids` (llm.stops) end the reply at the template's
    end-of-turn token, or at EOS for 'raw'.
    """

    def __init__(
        self, llm: LLMConfig, prompt_format: str = "chat", stop_token_ids: list[int] | None = None
    ) -> None:
        self.llm, self.prompt_format = llm, prompt_format
        self.stop_token_ids = list(stop_token_ids or [])

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        concepts = [str(c) for c in row["concepts"]]
        seed = R.derive_seed(self.llm.seed, row["combination_id"])
        version = generator_prompt.version(self.prompt_format)
        draft_id = R.make_id("draft", row["combination_id"], self.llm.model, version, seed, 0)
        prompt = generator_prompt.build_generator_prompt(concepts, row["level"], self.prompt_format)
        return {
            **_carry(row, COMBINATION_COLUMNS),
            "draft_id": draft_id,
            "generator_model": self.llm.model,
            "generator_prompt_version": version,
            "generation_seed": seed,
            ("prompt" if self.prompt_format == "raw" else "messages"): prompt,
            "sampling_params": sampling_params(self.llm, seed, self.stop_token_ids),
        }


class CollectDraft:
    """Postprocess for the generator: parse the reply into rationale and problem."""

    def __init__(self, max_tokens: int) -> None:
        self.max_tokens = max_tokens

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        text = row.get("generated_text") or ""
        parsed = parse_draft(text)
        tokens_out = int(row.get("num_generated_tokens") or 0)
        reason = parsed.reason
        if reason is not None and tokens_out >= self.max_tokens:
            reason = R.REASON_GENERATION_TRUNCATED  # ran out of tokens before the tags closed
        return {
            **_carry(row, COMBINATION_COLUMNS),
            **_carry(row, DRAFT_COLUMNS[:4]),
            "draft_text": text,
            "rationale": parsed.rationale,
            "problem": parsed.problem,
            "draft_tokens_in": int(row.get("num_input_tokens") or 0),
            "draft_tokens_out": tokens_out,
            "draft_status": R.STATUS_OK if reason is None else R.STATUS_FILTERED,
            "draft_reason": reason,
            "draft_error": None,
        }


class SettleDraft:
    """After the generator: give failed rows the same columns, as counted errors."""

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        error = row.get(INFERENCE_ERROR_COLUMN) or ""
        if not error:
            return _carry(row, COMBINATION_COLUMNS + DRAFT_COLUMNS)
        out = _carry(row, COMBINATION_COLUMNS + DRAFT_COLUMNS[:4])
        out.update(
            draft_text=None,
            rationale=None,
            problem=None,
            draft_tokens_in=0,
            draft_tokens_out=0,
            draft_status=R.STATUS_ERROR,
            draft_reason=R.REASON_GENERATION_ERROR,
            draft_error=R.format_error(error),
        )
        return out


def _skipped(row: dict[str, Any], index: int, cascade: Cascade | None) -> bool:
    """No judgement for this row: its draft failed, or the cascade knows the outcome."""
    if row["draft_status"] != R.STATUS_OK:
        return True
    return cascade is not None and cascade.skips(row, index)


class BuildJudgeRequest:
    """Preprocess for judge `index`: a judging prompt, or a 1-token dummy for failed drafts
    (and, with a cascade, for drafts earlier judges already rejected).

    In `schema` reply format every request (dummies too, so all rows share one Arrow type)
    carries the reply's JSON schema for the engine's structured outputs.
    """

    def __init__(self, index: int, judge: JudgeConfig, cascade: Cascade | None = None) -> None:
        self.index, self.llm, self.reply_format = index, judge.llm, judge.reply_format
        self.cascade = cascade

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        col = self._col
        # The judge index enters seed and id: two judges may share one model and config.
        seed = R.derive_seed(self.llm.seed, f"{row['draft_id']}:judge-{self.index}")
        version = judge_prompt.version(self.reply_format)
        out = {k: v for k, v in row.items() if k not in ("messages", "sampling_params")}
        out[col("id")] = R.make_id(
            "judgement", row["draft_id"], self.index, self.llm.model, version, seed
        )
        out[col("model")] = self.llm.model
        out[col("prompt_version")] = version
        out[col("seed")] = seed
        params = sampling_params(self.llm, seed)
        if self.reply_format == "schema":
            params = with_json_schema(params, judge_prompt.reply_schema())
        if _skipped(row, self.index, self.cascade):
            out["messages"] = SKIP_MESSAGES
            out["sampling_params"] = {**params, "max_tokens": 1}
            return out
        out["messages"] = judge_prompt.build_judge_messages(
            [str(c) for c in row["concepts"]],
            row["level"],
            row["rationale"],
            row["problem"],
            self.reply_format,
        )
        out["sampling_params"] = params
        return out

    def _col(self, field: str) -> str:
        return judge_column(self.index, field)


class CollectJudgement:
    """Postprocess for judge `index`: parse the verdict; skipped drafts get no judgement
    (no status: the judgement was never made).

    The parser follows the judge's reply format: JSON for `schema`, lines for `free_text`.
    """

    def __init__(
        self,
        index: int,
        carry: tuple[str, ...],
        judge: JudgeConfig,
        cascade: Cascade | None = None,
    ) -> None:
        self.index, self.carry, self.cascade = index, carry, cascade
        self.parse = parse_judgement_json if judge.reply_format == "schema" else parse_judgement

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        col = self._col
        out = _carry(row, self.carry + tuple(col(f) for f in JUDGE_FIELDS[:4]))
        if _skipped(row, self.index, self.cascade):
            out.update({col(f): None for f in JUDGE_FIELDS[4:]})
            return out
        parsed = self.parse(row.get("generated_text"))
        ok = parsed.verdict is not None and parsed.reason is None
        out.update(
            {
                col("text"): row.get("generated_text") or "",
                col("verdict"): parsed.verdict,
                col("ratings"): json.dumps(parsed.ratings, sort_keys=True),
                col("source"): parsed.source,
                col("status"): R.STATUS_OK if ok else R.STATUS_FILTERED,
                col("reason"): parsed.reason,
                col("error"): None,
                col("tokens_in"): int(row.get("num_input_tokens") or 0),
                col("tokens_out"): int(row.get("num_generated_tokens") or 0),
            }
        )
        return out

    def _col(self, field: str) -> str:
        return judge_column(self.index, field)


class SettleJudgement:
    """After judge `index`: failed rows keep the same columns, as counted judge errors."""

    def __init__(self, index: int, carry: tuple[str, ...], cascade: Cascade | None = None) -> None:
        self.index, self.carry, self.cascade = index, carry, cascade

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        columns = self.carry + tuple(judge_column(self.index, f) for f in JUDGE_FIELDS)
        out = _carry(row, columns)
        error = row.get(INFERENCE_ERROR_COLUMN) or ""
        if error and not _skipped(row, self.index, self.cascade):
            col = lambda f: judge_column(self.index, f)  # noqa: E731
            out.update({col(f): None for f in JUDGE_FIELDS[4:]})
            out[col("status")] = R.STATUS_ERROR
            out[col("reason")] = R.REASON_JUDGE_ERROR
            out[col("error")] = R.format_error(error)
            out[col("tokens_in")] = out[col("tokens_out")] = 0
        return out
