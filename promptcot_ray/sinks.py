"""A Ray Data sink that makes resumable, exactly-once outputs possible.

Each block becomes one Parquet file whose name is a hash of the row ids it holds, written
atomically (see RunDir.write_bytes). A retried task rewrites the same file instead of adding
a duplicate, and a killed job leaves only whole files behind, so a re-run can list the ids
already written and skip them.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import pyarrow as pa
from ray.data.block import Block, BlockAccessor
from ray.data.datasource.datasink import Datasink

from promptcot_ray.records import make_id
from promptcot_ray.storage import RunDir

logger = logging.getLogger(__name__)


def _typed_column(table: pa.Table, field: pa.Field) -> pa.ChunkedArray:
    column = table.column(field.name)
    try:
        return column.cast(field.type)
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        # Ray Data stores a block's columns as pickled Python objects when Arrow cannot type
        # some value in it (vLLM's prompt_logprobs dicts are keyed by int): such a column
        # cannot be cast, so rebuild it from its Python values with the declared type.
        return pa.chunked_array([pa.array(column.to_pylist(), type=field.type)])


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """Select and cast `table` to `schema`; a missing column is a bug and raises."""
    missing = [f.name for f in schema if f.name not in table.column_names]
    if missing:
        raise KeyError(f"rows lack columns {missing}; present: {table.column_names}")
    return pa.Table.from_arrays([_typed_column(table, f) for f in schema], schema=schema)


class IdKeyedParquetSink(Datasink[int]):
    """Write each block to `<rel_dir>/part-<hash of its ids>.parquet` under a run directory."""

    def __init__(self, run: RunDir, rel_dir: str, schema: pa.Schema, id_column: str) -> None:
        self.run, self.rel_dir, self.schema, self.id_column = (
            run,
            rel_dir,
            schema,
            id_column,
        )

    def write(self, blocks: Iterable[Block], ctx: Any) -> int:
        written = 0
        for block in blocks:
            table = BlockAccessor.for_block(block).to_arrow()
            if table.num_rows == 0:
                continue
            table = conform(table, self.schema)
            ids = sorted(table.column(self.id_column).to_pylist())
            name = f"part-{make_id('part', ids)}.parquet"
            self.run.write_table(f"{self.rel_dir}/{name}", table)
            written += table.num_rows
            logger.info("wrote %d rows to %s/%s", table.num_rows, self.rel_dir, name)
        return written

    def get_name(self) -> str:
        return "IdKeyedParquet"
