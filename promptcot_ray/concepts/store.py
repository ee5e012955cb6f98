"""The concept pool in a run directory: `concepts/pool/` tables plus a versioned marker."""

from __future__ import annotations

import posixpath

from promptcot_ray import layout
from promptcot_ray.concepts.pool import ConceptPool, pool_from_tables, pool_to_tables
from promptcot_ray.storage import RunDir

POOL_DIR = layout.POOL


def write_pool(run: RunDir, pool: ConceptPool, source: str | None = None) -> None:
    """Write the pool's tables, then its completion marker (version and source)."""
    run.delete_dir(POOL_DIR)
    for name, table in pool_to_tables(pool).items():
        run.write_table(f"{POOL_DIR}/{name}.parquet", table)
    info = {"version": pool.version, "concepts": len(pool.concepts), "source": source}
    run.mark_complete(POOL_DIR, info)


def stored_pool_source(run: RunDir) -> str | None:
    if not run.is_complete(POOL_DIR):
        return None
    return run.read_json(f"{POOL_DIR}/_SUCCESS.json").get("source")


def read_pool(run: RunDir) -> ConceptPool:
    """Read a complete pool from the run directory."""
    files = run.list_files(POOL_DIR, ".parquet")
    tables = {posixpath.basename(f)[: -len(".parquet")]: run.read_parquet_file(f) for f in files}
    return pool_from_tables(tables)


def stored_pool_version(run: RunDir) -> str | None:
    if not run.is_complete(POOL_DIR):
        return None
    return run.read_json(f"{POOL_DIR}/_SUCCESS.json").get("version")
