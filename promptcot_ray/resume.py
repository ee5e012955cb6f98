"""Resume: find which input rows a stage has already written, so a re-run skips them."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from promptcot_ray.storage import RunDir


def written_ids(run: RunDir, rel_dir: str, id_column: str) -> pa.Array:
    """Distinct ids present in the Parquet files under `rel_dir` (empty if none)."""
    done = run.read_table(rel_dir, columns=[id_column])
    if done is None:
        return pa.array([], pa.string())
    return pc.unique(done.column(0).combine_chunks())


def without_written(
    table: pa.Table, input_id_column: str, run: RunDir, rel_dir: str, output_id_column: str
) -> tuple[pa.Table, int]:
    """Rows of `table` whose id has no output yet, and how many outputs already exist."""
    done = written_ids(run, rel_dir, output_id_column)
    todo = table.filter(pc.invert(pc.is_in(table[input_id_column], value_set=done)))
    return todo, len(done)
