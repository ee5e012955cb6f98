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


def helper_cpus(*llms: LLMConfig) -> float:
    """CPUs for the map steps around these engines. Ray Data fuses consecutive steps only
    when they ask the same resources, so when every engine is the rehearsal stand-in (a map
    step itself) the helpers ask what it asks: the whole chain, sink included, runs as one
    task per block instead of one task per step per block."""
    from promptcot_ray.llm.rehearsal import STAND_IN_CPUS

    rehearsed = bool(llms) and all(llm.engine == "rehearsal" for llm in llms)
    return STAND_IN_CPUS if rehearsed else HELPER_CPUS


def write_rows(
    ds: Any,
    run: RunDir,
    rel_dir: str,
    schema: pa.Schema,
    id_column: str,
    num_cpus: float = HELPER_CPUS,
) -> None:
    """Execute the dataset, writing id-keyed Parquet parts under `rel_dir`."""
    from promptcot_ray.sinks import IdKeyedParquetSink

    sink = IdKeyedParquetSink(run, rel_dir, schema, id_column)
    ds.write_datasink(sink, ray_remote_args={"num_cpus": num_cpus})


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
    cpus = helper_cpus(llm)
    ds = build_processor(llm, pre, post)(dataset_from_table(rows, block_rows))
    write_rows(ds.map(settle, num_cpus=cpus), run, rel_dir, schema, id_column, cpus)
