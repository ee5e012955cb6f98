"""Arrow schemas of the synthesize job's results and of the four tables finalize writes.

`results/` holds one wide row per combination (combination, draft, every judge, decision);
drafts, judgements, accepted and rejected are the narrow tables people and later jobs read,
each row with its lineage.
"""

from __future__ import annotations

import pyarrow as pa

from promptcot_ray import records as R
from promptcot_ray.synthesis.stages import judge_column

_LINEAGE_FIELDS = R.LINEAGE_FIELDS
_OUTCOME_FIELDS = R.OUTCOME_FIELDS
_COMBO_FIELDS = [
    ("combination_id", pa.string()),
    ("combination_index", pa.int64()),
    ("concepts", pa.list_(pa.string())),
    ("level", pa.string()),
    ("pool_version", pa.string()),
    ("sampler_seed", pa.int64()),
]
_DRAFT_FIELDS = [
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
_JUDGE_FIELD_TYPES = {
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
_DECISION_FIELDS = [
    ("accepted", pa.bool_()),
    (R.STATUS, pa.string()),
    (R.REASON, pa.string()),
    ("rejected_stage", pa.string()),
    ("rejected_by", pa.string()),
]


def results_schema(num_judges: int) -> pa.Schema:
    judge_fields = [
        (judge_column(i, name), typ)
        for i in range(num_judges)
        for name, typ in _JUDGE_FIELD_TYPES.items()
    ]
    return pa.schema(_COMBO_FIELDS + _DRAFT_FIELDS + judge_fields + _DECISION_FIELDS)


DRAFTS_SCHEMA = pa.schema(
    _LINEAGE_FIELDS
    + [c for c in _COMBO_FIELDS if c[0] != "combination_id"]
    + [("text", pa.string()), ("rationale", pa.string()), ("problem", pa.string())]
    + [("tokens_in", pa.int64()), ("tokens_out", pa.int64())]
    + _OUTCOME_FIELDS
)
JUDGEMENTS_SCHEMA = pa.schema(
    _LINEAGE_FIELDS
    + [("draft_id", pa.string()), ("judge", pa.string()), ("text", pa.string())]
    + [("verdict", pa.string()), ("ratings", pa.string()), ("source", pa.string())]
    + [("tokens_in", pa.int64()), ("tokens_out", pa.int64())]
    + _OUTCOME_FIELDS
)
ACCEPTED_SCHEMA = pa.schema(
    _LINEAGE_FIELDS
    + [("combination_id", pa.string()), ("concepts", pa.list_(pa.string()))]
    + [("level", pa.string()), ("rationale", pa.string()), ("problem", pa.string())]
    + [("verdicts", pa.string()), ("round", pa.int64())]
)
REJECTED_SCHEMA = pa.schema(
    _LINEAGE_FIELDS
    + [("combination_id", pa.string()), ("rejected_stage", pa.string())]
    + [("rejected_by", pa.string())]
    + _OUTCOME_FIELDS
)
OUTPUT_TABLES = ("drafts", "judgements", "accepted", "rejected")
