"""The Arrow schema of every table a job writes into the run directory, in one module.

They sit below the stages (only `records` beneath them) because a table is read by more
jobs than write it: quality reads synthesis's accepted rows, the report and exports read
everything, `catalog` declares them all. A stage importing another stage for a schema was
an import sideways (issue #13); every stage now takes its own schema from here.
"""

from __future__ import annotations

from collections.abc import Sequence

import pyarrow as pa

from promptcot_ray import records as R

_LINEAGE = R.LINEAGE_FIELDS
_OUTCOME = R.OUTCOME_FIELDS


def _schema(*groups: Sequence) -> pa.Schema:
    return pa.schema([field for group in groups for field in group])


# concepts/seeds: the normalised seed problems (not lineage rows: seeds come from outside)
SEEDS_SCHEMA = _schema(
    [(R.ID, pa.string()), ("source_index", pa.int64()), ("problem", pa.string())],
    [("level", pa.string()), (R.STATUS, pa.string()), (R.REASON, pa.string())],
    [(R.ERROR, pa.string()), ("duplicate_of", pa.string()), (R.STAGE, pa.string())],
    [(R.CREATED_AT, pa.string())],
)
EXTRACTED_SCHEMA = _schema(
    _LINEAGE,
    [("seed_id", pa.string()), ("problem", pa.string()), ("concepts", pa.list_(pa.string()))],
    [("level", pa.string()), ("level_source", pa.string()), ("text", pa.string())],
    [("tokens_in", pa.int64()), ("tokens_out", pa.int64())],
    _OUTCOME,
)
RATIONALE_SCHEMA = _schema(
    _LINEAGE,
    [("seed_id", pa.string()), ("concepts", pa.list_(pa.string())), ("level", pa.string())],
    [("problem", pa.string())],
    [("candidate_key", pa.string())],  # seed_id:sample_index, the resume key
    [("rationale", pa.string())],
    [("prompt", pa.string())],  # the generator prompt: JSON chat messages, or raw text
    [("prompt_format", pa.string())],  # chat | raw: how the train job must render `prompt`
    [("prompt_version_generator", pa.string())],
    [("completion", pa.string())],  # tagged rationale + problem: the SFT target
    [("text", pa.string()), ("tokens_in", pa.int64()), ("tokens_out", pa.int64())],
    [("score_rationale", pa.float64())],  # log p(rationale | concepts, level); best-of-n
    [("score_problem", pa.float64())],  # log p(problem | concepts, level, rationale)
    [("score", pa.float64())],
    _OUTCOME,
)

# synthesis/round-<k>/combinations: one row per sampled combination
COMBINATION_SCHEMA = _schema(
    _LINEAGE,
    [("combination_index", pa.int64()), ("concept_ids", pa.list_(pa.int32()))],
    [("concepts", pa.list_(pa.string())), ("level", pa.string())],
    [("pool_version", pa.string()), (R.STATUS, pa.string()), (R.REASON, pa.string())],
)

# synthesis/round-<k>/results: one wide row per combination (combination, draft, every
# judge's fields under judge_<i>_<field>, decision); its width depends on the judges
RESULT_COMBINATION_FIELDS = [
    ("combination_id", pa.string()),
    ("combination_index", pa.int64()),
    ("concepts", pa.list_(pa.string())),
    ("level", pa.string()),
    ("pool_version", pa.string()),
    ("sampler_seed", pa.int64()),
]
RESULT_DRAFT_FIELDS = [
    ("draft_id", pa.string()),
    ("generator_model", pa.string()),
    ("generator_prompt_version", pa.string()),
    ("generation_seed", pa.int64()),
    ("draft_text", pa.string()),
    ("rationale", pa.string()),
    ("problem", pa.string()),
    ("draft_tokens_in", pa.int64()),
    ("draft_tokens_out", pa.int64()),
    ("draft_status", pa.string()),
    ("draft_reason", pa.string()),
    ("draft_error", pa.string()),
]
JUDGE_FIELD_TYPES = {
    "id": pa.string(),
    "model": pa.string(),
    "prompt_version": pa.string(),
    "seed": pa.int64(),
    "text": pa.string(),
    "verdict": pa.string(),
    "ratings": pa.string(),
    "source": pa.string(),
    "status": pa.string(),
    "reason": pa.string(),
    "error": pa.string(),
    "tokens_in": pa.int64(),
    "tokens_out": pa.int64(),
}
RESULT_DECISION_FIELDS = [
    ("accepted", pa.bool_()),
    (R.STATUS, pa.string()),
    (R.REASON, pa.string()),
    ("rejected_stage", pa.string()),
    ("rejected_by", pa.string()),
]


def judge_column(index: int, field: str) -> str:
    """Column name of one judge's field in the wide results row, e.g. judge_1_verdict."""
    return f"judge_{index}_{field}"


def results_schema(num_judges: int) -> pa.Schema:
    judges = [
        (judge_column(i, name), typ)
        for i in range(num_judges)
        for name, typ in JUDGE_FIELD_TYPES.items()
    ]
    return _schema(RESULT_COMBINATION_FIELDS, RESULT_DRAFT_FIELDS, judges, RESULT_DECISION_FIELDS)


# the four narrow tables finalize writes from results, each row with its lineage
DRAFTS_SCHEMA = _schema(
    _LINEAGE,
    [c for c in RESULT_COMBINATION_FIELDS if c[0] != "combination_id"],
    [("text", pa.string()), ("rationale", pa.string()), ("problem", pa.string())],
    [("tokens_in", pa.int64()), ("tokens_out", pa.int64())],
    _OUTCOME,
)
JUDGEMENTS_SCHEMA = _schema(
    _LINEAGE,
    [("draft_id", pa.string()), ("judge", pa.string()), ("text", pa.string())],
    [("verdict", pa.string()), ("ratings", pa.string()), ("source", pa.string())],
    [("tokens_in", pa.int64()), ("tokens_out", pa.int64())],
    _OUTCOME,
)
ACCEPTED_SCHEMA = _schema(
    _LINEAGE,
    [("combination_id", pa.string()), ("concepts", pa.list_(pa.string()))],
    [("level", pa.string()), ("rationale", pa.string()), ("problem", pa.string())],
    [("verdicts", pa.string()), ("round", pa.int64())],
)
REJECTED_SCHEMA = _schema(
    _LINEAGE,
    [("combination_id", pa.string()), ("rejected_stage", pa.string())],
    [("rejected_by", pa.string())],
    _OUTCOME,
)

# pipeline/generator-data/round-<k>: the next round's generator training rows
GENERATOR_DATA_SCHEMA = _schema(
    _LINEAGE,
    [("prompt", pa.string()), ("completion", pa.string())],
    [("source", pa.string()), ("round", pa.int64())],
)

# problems/ keeps accepted rows as they are (lineage stage `quality`); problems-removed/
# says why each removed row went and what it matched
KEPT_SCHEMA = ACCEPTED_SCHEMA
REMOVED_SCHEMA = _schema(
    _LINEAGE,
    [(R.REASON, pa.string()), ("matched_id", pa.string()), ("matched_source", pa.string())],
    [("jaccard", pa.float64()), ("ngram", pa.string()), ("problem", pa.string())],
)

# the solve stage's rows: distill/solutions (teacher samples), eval/<name>/generations
SOLUTION_FIELDS = [
    *_LINEAGE,
    pa.field("problem_id", pa.string()),
    pa.field("problem", pa.string()),
    pa.field("text", pa.string()),
    pa.field("answer", pa.string()),  # strict: a valid think block + boxed answer, else None
    pa.field("final_answer", pa.string()),  # lenient: last boxed answer after any </think>
    pa.field("finish_reason", pa.string()),
    pa.field("think_opened_by_prompt", pa.bool_()),
    pa.field("tokens_in", pa.int64()),
    pa.field("tokens_out", pa.int64()),
    *_OUTCOME,
]


def solution_schema(carried: Sequence[pa.Field] = ()) -> pa.Schema:
    return pa.schema([*SOLUTION_FIELDS, *carried])


LABEL_SCHEMA = _schema(
    _LINEAGE,
    [("problem_id", pa.string()), ("problem", pa.string()), ("label", pa.string())],
    [("confidence", pa.float64()), ("valid_solutions", pa.int64()), ("samples", pa.int64())],
    [("answer_groups", pa.int64())],
    _OUTCOME,
)
SFT_SCHEMA = _schema(
    _LINEAGE,
    [("problem_id", pa.string()), ("solution_id", pa.string())],
    [("prompt", pa.string())],  # JSON chat messages: the solve prompt
    [("completion", pa.string())],  # the teacher's whole solution (think + answer)
    [("label", pa.string()), ("tokens_out", pa.int64())],
)

# eval/<name>/generations and samples: a solution per (item, run), then graded
EVAL_CARRIED_FIELDS = [pa.field(c, pa.string()) for c in ("benchmark", "reference", "compare")]
EVAL_GENERATION_SCHEMA = solution_schema(EVAL_CARRIED_FIELDS)
EVAL_SAMPLE_SCHEMA = EVAL_GENERATION_SCHEMA.append(pa.field("correct", pa.bool_())).append(
    pa.field("grade_status", pa.string())
)
