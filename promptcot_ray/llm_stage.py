"""One LLM stage as a resumable Ray Data pipeline: rows -> processor -> settle -> files."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pyarrow as pa

from promptcot_ray.config import LLMConfig
from promptcot_ray.llm.engine import HELPER_STAGE_CPUS
from promptcot_ray.storage import RunDir

# small map steps must not hold whole CPUs on a 2-core machine (one value, engine.py)
HELPER_CPUS = HELPER_STAGE_CPUS
RowFn = Callable[[dict[str, Any]], dict[str, Any]]


def dataset_from_table(table: pa.Table, block_rows: int) -> Any:
    """A Ray dataset in blocks of `block_rows`: the unit of progress and of resume."""
    import ray

    blocks = [table.slice(i, block_rows) for i in range(0, table.num_rows, block_rows)]
    return ray.data.from_arrow(blocks)


def write_rows(ds: Any, run: RunDir, rel_dir: str, schema: pa.Schema, id_column: str) -> None:
    """Execute the dataset, writing id-keyed Parquet parts under `rel_dir`."""
    from promptcot_ray.sinks import IdKeyedParquetSink

    sink = IdKeyedParquetSink(run, rel_dir, schema, id_column)
    ds.write_datasink(sink, ray_remote_args={"num_cpus": HELPER_CPUS})


def run_llm_stage(
    rows: pa.Table,
    llm: LLMConfig,
    steps: tuple[RowFn, RowFn, RowFn],
    run: RunDir,
    rel_dir: str,
    schema: pa.Schema,
    id_column: str,
    block_rows: int,
) -> None:
    """Stream `rows` through one processor; `steps` = (preprocess, postprocess, settle)."""
    from promptcot_ray.llm.engine import build_processor

    pre, post, settle = steps
    ds = build_processor(llm, pre, post)(dataset_from_table(rows, block_rows))
    write_rows(ds.map(settle, num_cpus=HELPER_CPUS), run, rel_dir, schema, id_column)
