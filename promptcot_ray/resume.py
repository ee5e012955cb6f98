"""Resume: find which input rows a stage has finished, so a re-run skips them.

A row whose engine call failed (`status == error`) is not finished: a re-run tries it again,
and readers keep the successful copy (`prefer_finished`). Other outcomes, including counted
rejections, are final.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from promptcot_ray.records import STATUS, STATUS_ERROR
from promptcot_ray.storage import RunDir


def written_ids(run: RunDir, rel_dir: str, id_column: str) -> pa.Array:
    """Distinct ids under `rel_dir` with an outcome other than an engine error."""
    done = run.read_table(rel_dir, columns=[id_column, STATUS])
    if done is None:
        return pa.array([], pa.string())
    finished = done.filter(pc.not_equal(done[STATUS], STATUS_ERROR))
    return pc.unique(finished.column(id_column).combine_chunks())


def without_written(
    table: pa.Table,
    input_id_column: str,
    run: RunDir,
    rel_dir: str,
    output_id_column: str,
) -> tuple[pa.Table, int]:
    """Rows of `table` with no finished output yet, and how many outputs are finished."""
    done = written_ids(run, rel_dir, output_id_column)
    todo = table.filter(pc.invert(pc.is_in(table[input_id_column], value_set=done)))
    return todo, len(done)


def finished_rows(table: pa.Table, id_column: str) -> pa.Table:
    """One row per id, in arrow (no Python loop over rows): the first non-error copy, else
    the first copy. A retried call leaves its earlier error row behind; this drops it."""
    n = table.num_rows
    if not n:
        return table
    error = pc.fill_null(pc.equal(table[STATUS], STATUS_ERROR), False).cast(pa.int64())
    rank = pc.add(pc.multiply(error, n), pa.array(range(n), pa.int64()))  # ok rows first
    best = pa.table({"k": table[id_column], "r": rank}).group_by("k").aggregate([("r", "min")])
    ranks = best["r_min"]
    index = pc.if_else(pc.greater_equal(ranks, n), pc.subtract(ranks, n), ranks)
    return table.take(pc.take(index, pc.sort_indices(index)))  # in the table's order


def prefer_finished(rows: Iterable[dict[str, Any]], id_column: str) -> list[dict[str, Any]]:
    """One row per id: the first non-error copy, else the first copy (exactly-once reads)."""
    chosen: dict[str, dict[str, Any]] = {}
    for row in rows:
        held = chosen.get(row[id_column])
        if held is None or (held[STATUS] == STATUS_ERROR and row[STATUS] != STATUS_ERROR):
            chosen[row[id_column]] = row
    return list(chosen.values())
