"""Row functions around the rationale processor, and the generator SFT row they produce.

The SFT prompt is built by `build_generator_prompt`, the very function the synthesize job
prompts the generator with, in the same format (`chat` messages or `raw` text), so training
and inference can never drift apart. Rows carry the format so the train job renders them
the same way (a raw prompt gets no chat template).
"""

from __future__ import annotations

import json
import re
from typing import Any

from promptcot_ray import records as R
from promptcot_ray.config import LLMConfig
from promptcot_ray.llm.engine import INFERENCE_ERROR_COLUMN, sampling_params
from promptcot_ray.parsing import parse_rationale
from promptcot_ray.prompts import generator as generator_prompt
from promptcot_ray.prompts import rationale as rationale_prompt
from promptcot_ray.table_schemas import RATIONALE_SCHEMA

_WORD_RE = re.compile(r"\w+")
NGRAM = 5

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


def generator_prompt_json(concepts: list[str], level: str, prompt_format: str = "chat") -> str:
    """The SFT prompt cell: chat messages as JSON, or the raw prompt text itself."""
    prompt = generator_prompt.build_generator_prompt(concepts, level, prompt_format)
    return prompt if isinstance(prompt, str) else json.dumps(prompt)


class BuildRationaleRequest:
    """Preprocess: (problem, concepts, level) -> the rationale prompt."""

    def __init__(self, llm: LLMConfig) -> None:
        self.llm = llm

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        sample = int(row.get("sample_index") or 0)
        seed = R.derive_seed(self.llm.seed, f"{row['extraction_id']}:{sample}")
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
    """Postprocess: parse the rationale; reject empty ones and ones that restate the problem.

    The seed keeps its own contest level (AMC8, AHSME, ...) in the generator prompt.
    """

    def __init__(self, max_overlap: float, prompt_format: str = "chat") -> None:
        self.max_overlap, self.prompt_format = max_overlap, prompt_format

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        text = row.get("generated_text") or ""
        parsed = parse_rationale(text)
        reason = parsed.reason
        if reason is None and problem_overlap(row["problem"], parsed.rationale) >= self.max_overlap:
            reason = R.REASON_RATIONALE_RESTATES_PROBLEM
        ok = reason is None
        form = self.prompt_format
        prompt = generator_prompt_json(list(row["concepts"]), row["level"], form) if ok else None
        return {
            **{k: row.get(k) for k in _BASE},
            "rationale": parsed.rationale if ok else None,
            "prompt": prompt,
            "prompt_format": form,
            "prompt_version_generator": generator_prompt.version(form),
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

    def __init__(self, prompt_format: str = "chat") -> None:
        self.prompt_format = prompt_format

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        names = [f.name for f in RATIONALE_SCHEMA]
        error = row.get(INFERENCE_ERROR_COLUMN) or ""
        if not error:
            return {k: row.get(k) for k in names}
        out = {k: row.get(k) for k in _BASE}
        out.update(
            prompt_format=self.prompt_format,
            prompt_version_generator=generator_prompt.version(self.prompt_format),
            tokens_in=0,
            tokens_out=0,
            status=R.STATUS_ERROR,
            reason=R.REASON_RATIONALE_ERROR,
            error=R.format_error(error),
        )
        return {k: out.get(k) for k in names}
