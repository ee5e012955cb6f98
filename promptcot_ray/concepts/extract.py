"""Row functions around the concept-extraction processor (testable without Ray)."""

from __future__ import annotations

from typing import Any

from promptcot_ray import records as R
from promptcot_ray.config import LLMConfig
from promptcot_ray.levels import stated_level
from promptcot_ray.llm.engine import INFERENCE_ERROR_COLUMN, sampling_params
from promptcot_ray.parsing import parse_concepts
from promptcot_ray.prompts import concepts as concept_prompt
from promptcot_ray.table_schemas import EXTRACTED_SCHEMA


class BuildConceptRequest:
    """Preprocess: a seed problem -> the extraction prompt (k concepts and a level)."""

    def __init__(self, llm: LLMConfig, k: int) -> None:
        self.llm, self.k = llm, k

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        seed = R.derive_seed(self.llm.seed, row["seed_id"])
        extraction_id = R.make_id(
            "extraction",
            row["seed_id"],
            self.llm.model,
            concept_prompt.VERSION,
            seed,
            self.k,
        )
        return {
            **R.lineage(
                extraction_id,
                [row["seed_id"]],
                R.STAGE_EXTRACT,
                self.llm.model,
                concept_prompt.VERSION,
                seed,
                0,
            ),
            "seed_id": row["seed_id"],
            "problem": row["problem"],
            "seed_level": row["level"],
            "messages": concept_prompt.build_concept_messages(row["problem"], self.k),
            "sampling_params": sampling_params(self.llm, seed),
        }


def _base(row: dict[str, Any]) -> dict[str, Any]:
    keep = [*R.LINEAGE_COLUMNS, "seed_id", "problem"]
    return {k: row.get(k) for k in keep}


class CollectConcepts:
    """Postprocess: parse the concept list; the seed's own level wins over the reply's.

    The reply's level may be any known contest level (an AMC8-like seed is AMC8), so it is
    read with `levels.stated_level`, not the parser's eight-level matcher.
    """

    def __init__(self, k: int, min_concepts: int, max_chars: int) -> None:
        self.k, self.min_concepts, self.max_chars = k, min_concepts, max_chars

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        parsed = parse_concepts(row.get("generated_text"), self.min_concepts, self.max_chars)
        level, source = row.get("seed_level"), "seed"
        if not level:
            level = stated_level(row.get("generated_text")) or parsed.level
            source = "reply" if level else None
        return {
            **_base(row),
            "concepts": list(parsed.concepts[: self.k]),
            "level": level,
            "level_source": source,
            "text": row.get("generated_text") or "",
            "tokens_in": int(row.get("num_input_tokens") or 0),
            "tokens_out": int(row.get("num_generated_tokens") or 0),
            R.STATUS: R.STATUS_OK if parsed.reason is None else R.STATUS_FILTERED,
            R.REASON: parsed.reason,
            R.ERROR: None,
        }


class SettleConcepts:
    """After the processor: engine failures become counted errors with the same columns."""

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        error = row.get(INFERENCE_ERROR_COLUMN) or ""
        names = [f.name for f in EXTRACTED_SCHEMA]
        if not error:
            return {k: row.get(k) for k in names}
        out = {
            **_base(row),
            "concepts": [],
            "level": row.get("seed_level"),
            "level_source": "seed" if row.get("seed_level") else None,
            "text": None,
            "tokens_in": 0,
            "tokens_out": 0,
            R.STATUS: R.STATUS_ERROR,
            R.REASON: R.REASON_EXTRACTION_ERROR,
            R.ERROR: R.format_error(error),
        }
        return {k: out.get(k) for k in names}
