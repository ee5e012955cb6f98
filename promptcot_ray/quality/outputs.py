"""Schemas and per-batch builders of the quality job's outputs: kept and removed problems."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from promptcot_ray import layout
from promptcot_ray import records as R
from promptcot_ray.quality.dedup import Decision
from promptcot_ray.table_schemas import KEPT_SCHEMA, REMOVED_SCHEMA

KEPT_DIR = layout.PROBLEMS
REMOVED_DIR = layout.PROBLEMS_REMOVED


def _is_removed(batch: pa.Table, removed: pa.Array) -> pa.Array:
    return pc.is_in(batch[R.ID], value_set=removed)


def kept_rows(batch: pa.Table, removed: pa.Array) -> pa.Table:
    """Accepted rows that pass every gate, with lineage stage `quality` (same id)."""
    kept = batch.filter(pc.invert(_is_removed(batch, removed)))
    n = kept.num_rows
    kept = kept.set_column(
        kept.schema.get_field_index(R.STAGE), R.STAGE, pa.array([R.STAGE_QUALITY] * n)
    )
    parents = pa.array([[i] for i in kept[R.ID].to_pylist()], pa.list_(pa.string()))
    kept = kept.set_column(kept.schema.get_field_index(R.PARENT_IDS), R.PARENT_IDS, parents)
    return kept.select(KEPT_SCHEMA.names).cast(KEPT_SCHEMA)


def removed_rows(batch: pa.Table, decisions: dict[str, Decision], removed: pa.Array) -> pa.Table:
    """One REMOVED_SCHEMA row per removed accepted row, with its reason and match."""
    rows = []
    for row in batch.filter(_is_removed(batch, removed)).to_pylist():
        d = decisions[row[R.ID]]
        out = R.lineage(
            row[R.ID],
            [row[R.ID]],
            R.STAGE_QUALITY,
            row[R.MODEL],
            row[R.PROMPT_VERSION],
            row[R.SEED],
            row[R.SAMPLE_INDEX],
        )
        out.update(
            {
                R.REASON: d.reason,
                "matched_id": d.matched_id,
                "matched_source": d.matched_source,
                "jaccard": d.jaccard,
                "ngram": d.ngram,
                "problem": row["problem"],
            }
        )
        rows.append(out)
    return pa.Table.from_pylist(rows, schema=REMOVED_SCHEMA)
