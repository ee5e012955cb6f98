"""The texts problems are checked against: benchmark items (files or HF) and seed problems."""

from __future__ import annotations

import logging
import posixpath
from typing import Any

import pyarrow.compute as pc
import pyarrow.parquet as pq

from promptcot_ray import layout
from promptcot_ray import records as R
from promptcot_ray.config import ConfigError, StorageConfig
from promptcot_ray.quality.config import BenchmarkSource
from promptcot_ray.quality.decontam import SEEDS_SOURCE, Reference, benchmark_source
from promptcot_ray.sources import read_hf, strict_jsonl_rows
from promptcot_ray.storage import RunDir

logger = logging.getLogger(__name__)

SEEDS_DIR = layout.SEEDS  # written by the concepts job


def _read_file(path: str, storage: StorageConfig) -> list[dict[str, Any]]:
    folder = RunDir(posixpath.dirname(path) or ".", storage)
    name = posixpath.basename(path)
    if not folder.exists(name):
        raise ConfigError(f"benchmarks: file not found: {path}")
    if name.endswith(".parquet"):
        return pq.read_table(folder.path(name), filesystem=folder.fs).to_pylist()
    return strict_jsonl_rows(folder, name, "benchmarks")


def load_benchmark(src: BenchmarkSource, storage: StorageConfig) -> list[Reference]:
    """The items of one benchmark, each with its id (the id column, else the row number)."""
    rows = (
        _read_file(src.path, storage)
        if src.path
        else read_hf(
            f"benchmarks[{src.name}]", src.hf_dataset, src.hf_config, src.hf_split
        ).to_pylist()
    )
    if src.id_column and rows and src.id_column not in rows[0]:
        logger.warning(
            "benchmark %s has no %r column: contaminated items are reported by row number",
            src.name,
            src.id_column,
        )
    if not rows:
        raise ConfigError(f"benchmarks[{src.name}]: {src.path or src.hf_dataset} is empty")
    refs = []
    for i, row in enumerate(rows):
        if src.problem_column not in row:
            raise ConfigError(
                f"benchmarks[{src.name}]: row {i} has no column {src.problem_column!r} "
                f"(columns: {sorted(row)}); set problem_column"
            )
        item = row.get(src.id_column) if src.id_column else None
        item_id = str(i if item is None else item)  # an id of 0 is still an id
        refs.append(Reference(benchmark_source(src.name), item_id, row[src.problem_column]))
    logger.info("benchmark %s: %d items", src.name, len(refs))
    return refs


def load_seeds(run: RunDir) -> list[Reference]:
    """The run's kept seed problems; [] (with a log line) when the concepts job has not run."""
    if not run.is_complete(SEEDS_DIR):
        logger.info("no %s in %s: seed problems not checked", SEEDS_DIR, run.uri)
        return []
    seeds = run.read_table(SEEDS_DIR, columns=[R.ID, "problem", R.STATUS])
    seeds = seeds.filter(pc.equal(seeds[R.STATUS], R.STATUS_OK))
    ids, problems = seeds[R.ID].to_pylist(), seeds["problem"].to_pylist()
    return [Reference(SEEDS_SOURCE, i, p) for i, p in zip(ids, problems, strict=True) if p]
