"""Seed levels vs generation levels: seeds keep their own contest level (AMC8, AJHSME, ...)
through extraction and into the generator's training rows; only sampled levels are the eight."""

from __future__ import annotations

import json

import pytest

from promptcot_ray import records as R
from promptcot_ray.concepts.config import SeedSource
from promptcot_ray.concepts.extract import BuildConceptRequest, CollectConcepts
from promptcot_ray.concepts.seeds import prepare_seeds
from promptcot_ray.config import LLMConfig
from promptcot_ray.levels import match_level, stated_level
from promptcot_ray.prompts import concepts as concept_prompt
from promptcot_ray.prompts import generator as generator_prompt
from promptcot_ray.rationales.stages import BuildRationaleRequest, CollectRationale
from promptcot_ray.synthesis.config import CombinationConfig

LLM = LLMConfig(model="m", device="cpu")


@pytest.mark.parametrize(
    ("written", "level"),
    [
        ("AMC 8", "AMC8"),
        ("amc8", "AMC8"),
        ("AMC 10A", "AMC10"),
        ("AMC 12B", "AMC12"),
        ("AJHSME", "AJHSME"),
        ("ahsme", "AHSME"),
        ("AIME I", "AIME"),
        ("HMMT February", "HMMT-Feb"),
        ("hmmt november", "HMMT-Nov"),
        ("HMMT", "HMMT"),  # a bare HMMT tag stays HMMT, not one of its two rounds
        ("USAJMO", "USAJMO"),
        ("IMO Shortlist", "IMO-Shortlist"),
        ("AMC12 or AIME", None),  # hedging between two is no level
        ("Level 5", None),  # MATH's difficulty scale is no contest
        ("Island", None),  # a short alias inside a word does not count
    ],
)
def test_match_level_knows_every_contest_level(written, level):
    assert match_level(written) == level


def test_match_level_can_be_restricted_to_the_generation_levels():
    assert match_level("AMC 8", R.LEVELS) is None
    assert match_level("AIME", R.LEVELS) == "AIME"


def test_seeds_keep_their_own_contest_level():
    rows = [
        {"problem": "Count the squares.", "level": "AMC 8"},
        {"problem": "Sum the digits.", "level": "AJHSME"},
        {"problem": "Find the area.", "level": "AHSME"},
        {"problem": "Solve for n.", "level": "AMC 10B"},
        {"problem": "Prove it.", "level": "USAMO"},
    ]
    table = prepare_seeds(rows, SeedSource(path="x.jsonl")).to_pylist()
    assert [r["level"] for r in table] == ["AMC8", "AJHSME", "AHSME", "AMC10", "USAMO"]


def _extracted(reply: str, seed_level: str | None) -> dict:
    request = BuildConceptRequest(LLM, 5)({"seed_id": "s", "problem": "P", "level": seed_level})
    return CollectConcepts(5, 3, 200)({**request, "generated_text": reply})


def test_extraction_keeps_the_seed_level_and_reads_any_level_from_the_reply():
    reply = "1. Area of a rectangle\n2. Counting\n3. Symmetry\n**Level:** AMC 8"
    row = _extracted(reply, "AHSME")
    assert (row["level"], row["level_source"]) == ("AHSME", "seed")
    row = _extracted(reply, None)
    assert (row["level"], row["level_source"]) == ("AMC8", "reply")
    echoed = "1. A\n2. B\n3. C\nLevel: <one of AMC8, AMC12>\nLevel: AJHSME"
    assert stated_level(echoed) == "AJHSME"  # the echoed choice list is skipped


def test_concept_prompt_offers_the_seed_levels():
    text = concept_prompt.build_concept_messages("P", 5)[-1]["content"]
    assert all(level in text for level in ("AMC8", "AMC10", "AJHSME", "AHSME", *R.LEVELS))


def test_generator_training_row_keeps_an_amc8_level():
    row = {
        "extraction_id": "e",
        "seed_id": "s",
        "concepts": ["Area of a rectangle", "Counting"],
        "level": "AMC8",
        "problem": "How many squares are on a chessboard?",
    }
    request = BuildRationaleRequest(LLM)(row)
    assert "Contest level: AMC8" in request["messages"][-1]["content"]
    reply = "<!-- BEGIN RATIONALE -->\nStart from unit squares.\n<!-- END RATIONALE -->"
    out = CollectRationale(0.8)({**request, "generated_text": reply})
    assert out[R.STATUS] == R.STATUS_OK and out["level"] == "AMC8"
    prompt = json.loads(out["prompt"])
    assert prompt == generator_prompt.build_generator_messages(row["concepts"], "AMC8")
    assert "Target contest level: AMC8" in prompt[-1]["content"]


def test_only_the_eight_levels_are_sampled():
    assert CombinationConfig().levels == R.LEVELS
    with pytest.raises(ValueError, match="AMC8"):
        CombinationConfig(levels=("AIME", "AMC8"))
    assert set(R.LEVELS) < set(R.CONTEST_LEVELS)
