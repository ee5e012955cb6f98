"""Resume: find which input rows a stage has finished, so a re-run skips them.

A row whose engine call failed (`status == error`) is not finished: a re-run tries it again,
and readers keep the successful copy (`finished_rows`). Other outcomes, including counted
rejections, are final.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from promptcot_ray.records import ID, STATUS, STATUS_ERROR
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
    the first copy, in the order each id first appears. A retried call leaves its earlier
    error row behind; this drops it. Every job reads its outputs exactly once through it."""
    n = table.num_rows
    if not n:
        return table
    position = pa.array(range(n), pa.int64())
    error = pc.fill_null(pc.equal(table[STATUS], STATUS_ERROR), False).cast(pa.int64())
    rank = pc.add(pc.multiply(error, n), position)  # ok rows first, then by position
    keyed = pa.table({"k": table[id_column], "r": rank, "p": position})
    best = keyed.group_by("k").aggregate([("r", "min"), ("p", "min")])
    ranks = best["r_min"]
    index = pc.if_else(pc.greater_equal(ranks, n), pc.subtract(ranks, n), ranks)
    return table.take(pc.take(index, pc.sort_indices(best["p_min"])))


def finished_of(table: pa.Table, ids: pa.Array | pa.ChunkedArray) -> pa.Table:
    """`finished_rows` of `table` (keyed by `id`) restricted to the ids this run asked for."""
    chosen = finished_rows(table, ID)
    if isinstance(ids, pa.ChunkedArray):
        ids = ids.combine_chunks()
    return chosen.filter(pc.is_in(chosen[ID], value_set=ids))
