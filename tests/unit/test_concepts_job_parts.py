"""Seeds cleaning, concept merging, extraction and rationale row functions (no Ray)."""

from __future__ import annotations

import numpy as np
import pytest

from promptcot_ray import records as R
from promptcot_ray.concepts.config import SeedSource
from promptcot_ray.concepts.extract import (
    EXTRACTED_SCHEMA,
    BuildConceptRequest,
    CollectConcepts,
    SettleConcepts,
)
from promptcot_ray.concepts.merge import apply_merge, merge_map
from promptcot_ray.concepts.pool import build_pool
from promptcot_ray.concepts.seeds import prepare_seeds, seed_id
from promptcot_ray.config import LLMConfig
from promptcot_ray.llm.engine import INFERENCE_ERROR_COLUMN
from promptcot_ray.rationales.stages import CollectRationale, problem_overlap

LLM = LLMConfig(model="m", device="cpu")
SRC = SeedSource(path="x.jsonl")


def test_prepare_seeds_keeps_every_row_with_a_reason():
    rows = [
        {"problem": "Find x.", "level": "aime"},
        {"problem": "  find   X. "},  # duplicate after normalisation
        {"problem": ""},
        {"question": "wrong column"},
        "line 5: JSONDecodeError: bad",
        {"problem": "Prove y.", "level": "not a level"},
    ]
    table = prepare_seeds(rows, SRC).to_pylist()
    assert [r[R.REASON] for r in table] == [
        None,
        R.REASON_SEED_DUPLICATE,
        R.REASON_SEED_EMPTY,
        R.REASON_SEED_EMPTY,
        R.REASON_SEED_MALFORMED,
        None,
    ]
    assert table[0][R.ID] == seed_id("Find x.") == table[1]["duplicate_of"]
    assert table[0]["level"] == "AIME" and table[5]["level"] is None
    assert len({r[R.ID] for r in table}) == len(table)
    assert len(prepare_seeds(rows, SeedSource(path="x.jsonl", limit=2))) == 2


def test_seed_source_needs_exactly_one_origin():
    with pytest.raises(ValueError, match="exactly one"):
        SeedSource()
    with pytest.raises(ValueError, match="exactly one"):
        SeedSource(path="a", hf_dataset="b")


def test_merge_maps_near_identical_concepts_to_the_more_frequent():
    lists = [
        ["Pigeonhole principle", "Parity"],
        ["The pigeonhole principle"],
        ["Pigeonhole principle", "Graph coloring"],
    ]
    vectors = {
        "pigeonhole principle": [1.0, 0.0, 0.0],
        "the pigeonhole principle": [0.99, 0.1, 0.0],
        "parity": [0.0, 1.0, 0.0],
        "graph coloring": [0.0, 0.0, 1.0],
    }

    def embed(texts):
        return np.array([vectors[t.casefold()] for t in texts], dtype=np.float32)

    pool = build_pool(lists, embed)
    merged = apply_merge(lists, merge_map(pool, 0.95))
    assert merged[1] == ["Pigeonhole principle"]
    assert merged[0] == ["Pigeonhole principle", "Parity"]
    assert len(build_pool(merged, embed).concepts) == 3


def _extraction(text: str, seed_level=None) -> dict:
    request = BuildConceptRequest(LLM, 5)({"seed_id": "s1", "problem": "P", "level": seed_level})
    return {**request, "generated_text": text, "num_generated_tokens": 5, "num_input_tokens": 9}


def test_extraction_reply_parsed_and_seed_level_wins():
    reply = "1. Pigeonhole principle\n2. Parity\n3. Invariants\nLevel: AMC12"
    row = CollectConcepts(5, 3, 200)(_extraction(reply, seed_level="AIME"))
    assert row["concepts"] == ["Pigeonhole principle", "Parity", "Invariants"]
    assert (row["level"], row["level_source"], row[R.STATUS]) == ("AIME", "seed", R.STATUS_OK)
    row = CollectConcepts(5, 3, 200)(_extraction(reply))
    assert (row["level"], row["level_source"]) == ("AMC12", "reply")
    short = CollectConcepts(5, 3, 200)(_extraction("1. Parity"))
    assert short[R.REASON] == R.REASON_CONCEPTS_TOO_FEW
    assert set(short) == {f.name for f in EXTRACTED_SCHEMA}


def test_extraction_engine_error_is_counted():
    row = SettleConcepts()({**_extraction(""), INFERENCE_ERROR_COLUMN: "boom"})
    assert (row[R.STATUS], row[R.REASON]) == (R.STATUS_ERROR, R.REASON_EXTRACTION_ERROR)
    assert set(row) == {f.name for f in EXTRACTED_SCHEMA}


def test_problem_overlap_and_restatement_rejection():
    problem = "Find the number of positive integers n less than 1000 such that n squared is odd."
    assert problem_overlap(problem, problem) == 1.0
    assert problem_overlap(problem, "Think about parity of squares first.") == 0.0
    row = {
        "problem": problem,
        "concepts": ["Parity"],
        "level": "AIME",
        "generated_text": f"<!-- BEGIN RATIONALE -->\n{problem}\n<!-- END RATIONALE -->",
    }
    assert CollectRationale(0.8)(row)[R.REASON] == R.REASON_RATIONALE_RESTATES_PROBLEM
    row["generated_text"] = "<!-- BEGIN RATIONALE -->\nUse parity.\n<!-- END RATIONALE -->"
    out = CollectRationale(0.8)(row)
    assert out[R.STATUS] == R.STATUS_OK and problem in out["completion"]
