"""Row functions around the rationale processor, and the generator SFT row they produce.

The SFT prompt is built by `build_generator_messages`, the very function the synthesize job
prompts the generator with, so training and inference can never drift apart.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pyarrow as pa

from promptcot_ray import records as R
from promptcot_ray.config import LLMConfig
from promptcot_ray.llm.engine import INFERENCE_ERROR_COLUMN, sampling_params
from promptcot_ray.parsing import parse_rationale
from promptcot_ray.prompts import generator as generator_prompt
from promptcot_ray.prompts import rationale as rationale_prompt
from promptcot_ray.synthesis.stages import derive_seed

_WORD_RE = re.compile(r"\w+")
NGRAM = 5

RATIONALE_SCHEMA = pa.schema(
    [
        *R.LINEAGE_FIELDS,
        ("seed_id", pa.string()),
        ("concepts", pa.list_(pa.string())),
        ("level", pa.string()),
        ("problem", pa.string()),
        ("candidate_key", pa.string()),  # seed_id:sample_index, the resume key
        ("rationale", pa.string()),
        ("prompt", pa.string()),  # JSON chat messages: the generator prompt
        ("prompt_version_generator", pa.string()),
        ("completion", pa.string()),  # tagged rationale + problem: the SFT target
        ("text", pa.string()),
        ("tokens_in", pa.int64()),
        ("tokens_out", pa.int64()),
        (
            "score_rationale",
            pa.float64(),
        ),  # log p(rationale | concepts, level); best-of-n
        ("score_problem", pa.float64()),  # log p(problem | concepts, level, rationale)
        ("score", pa.float64()),
        *R.OUTCOME_FIELDS,
    ]
)
_BASE = [*R.LINEAGE_COLUMNS, "seed_id", "concepts", "level", "problem", "candidate_key"]


def problem_overlap(problem: str, rationale: str, n: int = NGRAM) -> float:
    """Share of the problem's word n-grams found in the rationale (1.0 = restated whole)."""
    words = [w.casefold() for w in _WORD_RE.findall(problem)]
    grams = {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}
    if not grams:
        return 0.0
    r_words = [w.casefold() for w in _WORD_RE.findall(rationale)]
    r_grams = {tuple(r_words[i : i + n]) for i in range(len(r_words) - n + 1)}
    return len(grams & r_grams) / len(grams)


def generator_prompt_json(concepts: list[str], level: str) -> str:
    return json.dumps(generator_prompt.build_generator_messages(concepts, level))


class BuildRationaleRequest:
    """Preprocess: (problem, concepts, level) -> the rationale prompt."""

    def __init__(self, llm: LLMConfig) -> None:
        self.llm = llm

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        sample = int(row.get("sample_index") or 0)
        seed = derive_seed(self.llm.seed, f"{row['extraction_id']}:{sample}")
        rid = R.make_id(
            "rationale",
            row["extraction_id"],
            self.llm.model,
            rationale_prompt.VERSION,
            seed,
            sample,
        )
        concepts = [str(c) for c in row["concepts"]]
        return {
            **R.lineage(
                rid,
                [row["extraction_id"]],
                R.STAGE_RATIONALE,
                self.llm.model,
                rationale_prompt.VERSION,
                seed,
                sample,
            ),
            "seed_id": row["seed_id"],
            "concepts": concepts,
            "level": row["level"],
            "problem": row["problem"],
            "candidate_key": row.get("candidate_key") or f"{row['seed_id']}:{sample}",
            "messages": rationale_prompt.build_rationale_messages(
                row["problem"], concepts, row["level"]
            ),
            "sampling_params": sampling_params(self.llm, seed),
        }


class CollectRationale:
    """Postprocess: parse the rationale; reject empty ones and ones that restate the problem."""

    def __init__(self, max_overlap: float) -> None:
        self.max_overlap = max_overlap

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        text = row.get("generated_text") or ""
        parsed = parse_rationale(text)
        reason = parsed.reason
        if reason is None and problem_overlap(row["problem"], parsed.rationale) >= self.max_overlap:
            reason = R.REASON_RATIONALE_RESTATES_PROBLEM
        ok = reason is None
        return {
            **{k: row.get(k) for k in _BASE},
            "rationale": parsed.rationale if ok else None,
            "prompt": generator_prompt_json(list(row["concepts"]), row["level"]) if ok else None,
            "prompt_version_generator": generator_prompt.VERSION,
            "completion": generator_prompt.format_completion(parsed.rationale, row["problem"])
            if ok
            else None,
            "text": text,
            "tokens_in": int(row.get("num_input_tokens") or 0),
            "tokens_out": int(row.get("num_generated_tokens") or 0),
            R.STATUS: R.STATUS_OK if ok else R.STATUS_FILTERED,
            R.REASON: reason,
            R.ERROR: None,
        }


class SettleRationale:
    """After the processor: engine failures become counted errors with the same columns."""

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        names = [f.name for f in RATIONALE_SCHEMA]
        error = row.get(INFERENCE_ERROR_COLUMN) or ""
        if not error:
            return {k: row.get(k) for k in names}
        out = {k: row.get(k) for k in _BASE}
        out.update(
            prompt_version_generator=generator_prompt.VERSION,
            tokens_in=0,
            tokens_out=0,
            status=R.STATUS_ERROR,
            reason=R.REASON_RATIONALE_ERROR,
            error=R.format_error(error),
        )
        return {k: out.get(k) for k in names}
