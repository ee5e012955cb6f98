"""Row schemas, column names, reason codes and content-derived ids.

Every row the system writes carries lineage (id, parent ids, stage, model, prompt version,
seed, sample index, creation time) so any accepted problem can be traced back to the
combination, model and prompt that made it. Column names and reason codes live here, as
constants, so jobs, tests and reports agree on them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa

# --- lineage columns (on every row the system writes) -----------------------------------
ID = "id"
PARENT_IDS = "parent_ids"
STAGE = "stage"
MODEL = "model"
PROMPT_VERSION = "prompt_version"
SEED = "seed"
SAMPLE_INDEX = "sample_index"
CREATED_AT = "created_at"
LINEAGE_COLUMNS = (
    ID,
    PARENT_IDS,
    STAGE,
    MODEL,
    PROMPT_VERSION,
    SEED,
    SAMPLE_INDEX,
    CREATED_AT,
)

# --- outcome columns (on every row a fallible stage writes) -----------------------------
STATUS = "status"  # one of STATUS_OK / STATUS_FILTERED / STATUS_ERROR
REASON = "reason"  # a stable reason code below; None when status is ok
ERROR = "error"  # "Type: message", truncated; None unless status is error
STATUS_OK = "ok"
STATUS_FILTERED = "filtered"
STATUS_ERROR = "error"
MAX_ERROR_CHARS = 500

# --- stage names (the `stage` column and ledger keys) -----------------------------------
STAGE_COMBINATIONS = "combinations"
STAGE_GENERATE = "generate"
STAGE_JUDGE = "judge"
STAGE_VERDICT = "verdict"
STAGE_SEEDS = "seeds"
STAGE_EXTRACT = "extract_concepts"
STAGE_POOL = "pool"
STAGE_RATIONALE = "rationale"

# --- reason codes: each says exactly what happened --------------------------------------
# combination sampling
REASON_DUPLICATE_COMBINATION = "duplicate_combination"
# quota rounds: the same concept set was already used by an earlier round of this run
REASON_USED_IN_EARLIER_ROUND = "combination_used_in_earlier_round"
# quota rounds: its level's target is met, or covered by combinations already in flight
REASON_LEVEL_QUOTA_COVERED = "level_quota_covered"
# reasons a combination is dropped before it reaches the generator (costs no engine call)
COMBINATION_REASONS = (
    REASON_DUPLICATE_COMBINATION,
    REASON_USED_IN_EARLIER_ROUND,
    REASON_LEVEL_QUOTA_COVERED,
)
# generation and draft parsing
REASON_GENERATION_ERROR = "generation_error"  # the engine failed on this row
REASON_GENERATION_TRUNCATED = "generation_truncated"  # hit max_tokens before closing tags
REASON_DRAFT_EMPTY = "draft_empty"
REASON_DRAFT_MISSING_RATIONALE = "draft_missing_rationale"
REASON_DRAFT_MISSING_PROBLEM = "draft_missing_problem"
REASON_DRAFT_MISSING_BOTH = "draft_missing_rationale_and_problem"
# seeds and concept extraction
REASON_SEED_EMPTY = "seed_empty_problem"
REASON_SEED_DUPLICATE = "seed_duplicate"
REASON_SEED_MALFORMED = "seed_malformed_row"
REASON_EXTRACTION_ERROR = "extraction_error"
# rationales
REASON_RATIONALE_ERROR = "rationale_error"
REASON_RATIONALE_RESTATES_PROBLEM = "rationale_restates_problem"
REASON_RATIONALE_NO_LEVEL = "rationale_no_level"
REASON_RATIONALE_SCORE_ERROR = "rationale_score_error"
REASON_RATIONALE_NOT_BEST = "rationale_not_best"  # best-of-n kept a higher-scoring one
# judging
REASON_JUDGE_ERROR = "judge_error"  # the judge engine failed on this row
REASON_JUDGE_EMPTY = "judge_empty"
REASON_JUDGE_UNPARSEABLE = "judge_unparseable"  # no rating and no verdict could be read
REASON_JUDGE_CONTRADICTORY = "judge_contradictory"  # verdict line disagrees with ratings
# the free-text judge parser fails closed: each way a reply can fail to rate all five
REASON_JUDGE_NO_RATINGS = "judge_no_ratings"  # a verdict, but no criterion rated
REASON_JUDGE_MISSING_CRITERION = "judge_missing_criterion"  # some criterion has no rating
REASON_JUDGE_CONFLICTING_RATINGS = "judge_conflicting_ratings"  # one criterion, two ratings
REASON_JUDGE_UNKNOWN_RATING = "judge_unknown_rating"  # "Poor", "Not perfect", "Bad/Acceptable"
REASON_JUDGED_ACCEPTABLE = "judged_acceptable"  # a judge said acceptable (only_perfect mode)
REASON_JUDGED_BAD = "judged_bad"
# concept extraction and rationale writing (seed-problem stages)
REASON_CONCEPTS_EMPTY = "concepts_empty"  # the extraction reply was empty
REASON_CONCEPTS_TOO_FEW = "concepts_too_few"  # fewer usable concepts than asked for
REASON_RATIONALE_EMPTY = "rationale_empty"  # the rationale reply was empty
REASON_RATIONALE_MISSING = "rationale_missing"  # no complete, non-empty rationale block

# --- the method's vocabulary --------------------------------------------------------------
LEVELS = ("AMC12", "HMMT-Nov", "HMMT-Feb", "AIME", "USAJMO", "USAMO", "USOJMO", "USOMO")
# Every contest level a seed problem may carry (AoPS tags): seeds keep their own level in
# extraction and in the generator's training rows; only sampled generation levels are LEVELS.
CONTEST_LEVELS = (
    *LEVELS,
    "AJHSME",
    "AMC8",
    "AMC10",
    "AHSME",
    "HMMT",
    "USAMTS",
    "ARML",
    "PUMaC",
    "Putnam",
    "IMO",
    "IMO-Shortlist",
    "IberoAmerican",
    "APMO",
    "Balkan-MO",
    "EGMO",
)
CRITERIA = (
    "format",
    "factual_accuracy",
    "difficulty_alignment",
    "concept_coverage",
    "solvability",
)
RATINGS = ("perfect", "acceptable", "bad")
VERDICTS = ("perfect", "acceptable", "bad")

# Arrow types of the lineage and outcome columns, shared by every output schema.
LINEAGE_FIELDS = [
    pa.field(ID, pa.string()),
    pa.field(PARENT_IDS, pa.list_(pa.string())),
    pa.field(STAGE, pa.string()),
    pa.field(MODEL, pa.string()),
    pa.field(PROMPT_VERSION, pa.string()),
    pa.field(SEED, pa.int64()),
    pa.field(SAMPLE_INDEX, pa.int64()),
    pa.field(CREATED_AT, pa.string()),
]
OUTCOME_FIELDS = [
    pa.field(STATUS, pa.string()),
    pa.field(REASON, pa.string()),
    pa.field(ERROR, pa.string()),
]

ID_HEX_CHARS = 20  # 80 bits: collisions are negligible at billions of rows


def make_id(kind: str, *parts: Any) -> str:
    """Return a stable id for a row made from `parts` (anything JSON-serialisable).

    The same inputs give the same id on any machine and in any process, which is what lets
    a resumed job skip finished rows and lets readers drop duplicates.
    """
    payload = json.dumps([kind, *parts], sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:ID_HEX_CHARS]


def derive_seed(base_seed: int, row_id: str) -> int:
    """Per-row sampling seed: stable for a row id, distinct across rows (31 bits for vLLM)."""
    return int(make_id("seed", base_seed, row_id)[:8], 16) & 0x7FFFFFFF


def now_iso() -> str:
    """UTC timestamp for the `created_at` column."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def format_error(exc: BaseException | str) -> str:
    """`Type: message`, truncated, for the `error` column."""
    text = exc if isinstance(exc, str) else f"{type(exc).__name__}: {exc}"
    return text[:MAX_ERROR_CHARS]


def lineage(
    row_id: str,
    parent_ids: Iterable[str],
    stage: str,
    model: str | None,
    prompt_version: str | None,
    seed: int | None,
    sample_index: int | None,
) -> dict[str, Any]:
    """The lineage columns of one row, as a dict to merge into the row."""
    return {
        ID: row_id,
        PARENT_IDS: list(parent_ids),
        STAGE: stage,
        MODEL: model,
        PROMPT_VERSION: prompt_version,
        SEED: seed,
        SAMPLE_INDEX: sample_index,
        CREATED_AT: now_iso(),
    }


# --- quality gates (dedup, decontamination) ---------------------------------------------
STAGE_QUALITY = "quality"
REASON_EXACT_DUPLICATE = "exact_duplicate"  # same normalised text as a kept problem
REASON_NEAR_DUPLICATE = "near_duplicate"  # MinHash Jaccard estimate >= threshold
REASON_CONTAMINATED = "contaminated"  # shares an n-gram with a benchmark item
REASON_SEED_COPY = "seed_copy"  # shares an n-gram with a seed problem
