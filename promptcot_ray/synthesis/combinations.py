"""Sample a round's concept combinations in parallel Ray tasks, one task and file per shard.

Combination i depends only on (pool, seed, i), so shards can run on any worker in any
order and a re-run makes the same combinations. Duplicates (the same concept set as an
earlier index) need every shard's concept ids: the driver finds them with one vectorised
numpy pass over that small int array; each shard's task then builds its Arrow table (ids,
concept names, lineage) and writes it, so no per-row Python object is made on the driver.
"""

from __future__ import annotations

import hashlib
import json
import logging

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from promptcot_ray import records as R
from promptcot_ray.concepts.pool import ConceptPool
from promptcot_ray.concepts.sampler import (
    find_duplicate_combinations,
    sample_combination_arrays,
)
from promptcot_ray.storage import RunDir
from promptcot_ray.synthesis.config import CombinationConfig
from promptcot_ray.table_schemas import COMBINATION_SCHEMA

logger = logging.getLogger(__name__)

SAMPLING_TASK_CPUS = 1


def _sample_shard(
    pool: ConceptPool, cfg: CombinationConfig, start: int, count: int
) -> tuple[np.ndarray, np.ndarray]:
    return sample_combination_arrays(
        pool, cfg.seed, start, count, cfg.size, cfg.temperature, cfg.levels
    )


def combination_ids(
    version: str, seed: int, index: np.ndarray, concept_ids: np.ndarray, level_json: pa.Array
) -> pa.Array:
    """`R.make_id("combination", version, seed, i, ids, level)` for every row at once.

    The JSON payloads are assembled with Arrow string kernels (same bytes as json.dumps
    would give); only the sha256 itself runs per row, inside the shard's task.
    """
    n, size = concept_ids.shape
    flat = pa.array(concept_ids.reshape(-1).astype(np.int64)).cast(pa.string())
    lists = pa.ListArray.from_arrays(pa.array(np.arange(0, n * size + 1, size, np.int32)), flat)
    prefix = f'["combination", {json.dumps(version, ensure_ascii=False)}, {int(seed)}, '
    head = pa.array(np.full(n, prefix))
    payload = pc.binary_join_element_wise(
        head,
        pa.array(index.astype(np.int64)).cast(pa.string()),
        ", [",
        pc.binary_join(lists, ", "),
        "], ",
        level_json,
        "]",
        "",
    )
    digests = [
        hashlib.sha256(p.encode("utf-8")).hexdigest()[: R.ID_HEX_CHARS] for p in payload.to_pylist()
    ]
    return pa.array(digests, pa.string())


def combinations_table(
    pool: ConceptPool,
    cfg: CombinationConfig,
    start: int,
    arrays: tuple[np.ndarray, np.ndarray],
    duplicate: np.ndarray | None,
    reasons: pa.Array | None = None,
) -> pa.Table:
    """Rows start..start+n-1: id, concepts, level, lineage and status (vectorised).

    A row is filtered when `duplicate` marks it, or with its reason from `reasons` (a string
    array, null = sent to the generator; quota rounds decide more than duplicates)."""
    concept_ids, level_idx = arrays
    n, size = concept_ids.shape
    index = np.arange(start, start + n, dtype=np.int64)
    take = pa.array(level_idx.astype(np.int32))
    level = pa.array(cfg.levels, pa.string()).take(take)
    level_json = pa.array([json.dumps(v, ensure_ascii=False) for v in cfg.levels]).take(take)
    offsets = pa.array(np.arange(0, n * size + 1, size, np.int32))
    flat = pa.array(concept_ids.reshape(-1).astype(np.int32))
    names = pa.array(pool.concepts, pa.string()).take(flat)
    if reasons is None:
        dup = pa.array(duplicate.astype(bool))
        reasons = pc.if_else(dup, R.REASON_DUPLICATE_COMBINATION, pa.scalar(None, pa.string()))
    columns = {
        R.ID: combination_ids(pool.version, cfg.seed, index, concept_ids, level_json),
        R.PARENT_IDS: pa.ListArray.from_arrays(
            pa.array(np.zeros(n + 1, np.int32)), pa.array([], pa.string())
        ),
        R.STAGE: pa.array(np.full(n, R.STAGE_COMBINATIONS)),
        R.MODEL: pa.nulls(n, pa.string()),
        R.PROMPT_VERSION: pa.nulls(n, pa.string()),
        R.SEED: pa.array(np.full(n, cfg.seed, np.int64)),
        R.SAMPLE_INDEX: pa.array(index),
        R.CREATED_AT: pa.array(np.full(n, R.now_iso())),
        "combination_index": pa.array(index),
        "concept_ids": pa.ListArray.from_arrays(offsets, flat),
        "concepts": pa.ListArray.from_arrays(offsets, names),
        "level": level,
        "pool_version": pa.array(np.full(n, pool.version)),
        R.STATUS: pc.if_else(pc.is_valid(reasons), R.STATUS_FILTERED, R.STATUS_OK),
        R.REASON: reasons,
    }
    return pa.table(columns).cast(COMBINATION_SCHEMA)


def _write_shard(run, rel, pool, cfg, start, arrays, duplicate) -> int:
    table = combinations_table(pool, cfg, start, arrays, duplicate)
    run.write_table(f"{rel}/part-{start // cfg.shard_size:05d}.parquet", table)
    return table.num_rows


def write_combinations(run: RunDir, rel: str, pool: ConceptPool, cfg: CombinationConfig) -> int:
    """Sample every shard, mark duplicates, and write one Parquet file per shard; rows written."""
    import ray

    sample = ray.remote(num_cpus=SAMPLING_TASK_CPUS)(_sample_shard)
    write = ray.remote(num_cpus=SAMPLING_TASK_CPUS)(_write_shard)
    pool_ref = ray.put(pool)
    starts = list(range(0, cfg.num_combinations, cfg.shard_size))
    counts = [min(cfg.shard_size, cfg.num_combinations - s) for s in starts]
    refs = [sample.remote(pool_ref, cfg, s, c) for s, c in zip(starts, counts, strict=True)]
    duplicate = find_duplicate_combinations(np.concatenate([ids for ids, _ in ray.get(refs)]))
    writes = [
        write.remote(run, rel, pool_ref, cfg, s, ref, duplicate[s : s + c])
        for s, c, ref in zip(starts, counts, refs, strict=True)
    ]
    rows = sum(ray.get(writes))
    logger.info("sampled %d combinations into %d shard file(s)", rows, len(writes))
    return rows
