"""Sample a round's concept combinations in parallel Ray tasks, one task per shard.

Combination i depends only on (pool, seed, i), so shards can run on any worker in any
order and a re-run makes the same combinations. Duplicates (the same concept set as an
earlier index) are found on the driver over the small id array and rejected with a reason.
"""

from __future__ import annotations

import logging

import numpy as np
import pyarrow as pa

from promptcot_ray import records as R
from promptcot_ray.concepts.pool import ConceptPool
from promptcot_ray.concepts.sampler import (
    find_duplicate_combinations,
    sample_combination_arrays,
)
from promptcot_ray.config import CombinationConfig

logger = logging.getLogger(__name__)

SAMPLING_TASK_CPUS = 1


def _sample_shard(
    pool: ConceptPool, cfg: CombinationConfig, start: int, count: int
) -> tuple[np.ndarray, np.ndarray]:
    return sample_combination_arrays(
        pool, cfg.seed, start, count, cfg.size, cfg.temperature, cfg.levels
    )


def sample_arrays(pool: ConceptPool, cfg: CombinationConfig) -> tuple[np.ndarray, np.ndarray]:
    """All combinations of the round as (concept_ids (n, size), level_idx (n,)) arrays."""
    import ray

    remote = ray.remote(num_cpus=SAMPLING_TASK_CPUS)(_sample_shard)
    pool_ref = ray.put(pool)
    starts = range(0, cfg.num_combinations, cfg.shard_size)
    refs = [
        remote.remote(pool_ref, cfg, s, min(cfg.shard_size, cfg.num_combinations - s))
        for s in starts
    ]
    parts = ray.get(refs)
    logger.info("sampled %d combinations in %d shard(s)", cfg.num_combinations, len(parts))
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def combinations_table(
    pool: ConceptPool,
    cfg: CombinationConfig,
    concept_ids: np.ndarray,
    level_idx: np.ndarray,
) -> pa.Table:
    """One row per combination with its id, concepts, level, lineage and duplicate status."""
    duplicate = find_duplicate_combinations(concept_ids)
    created = R.now_iso()
    rows = []
    for index in range(len(concept_ids)):
        ids = [int(c) for c in concept_ids[index]]
        level = cfg.levels[int(level_idx[index])]
        row_id = R.make_id("combination", pool.version, cfg.seed, index, ids, level)
        dup = bool(duplicate[index])
        rows.append(
            {
                **R.lineage(row_id, [], R.STAGE_COMBINATIONS, None, None, cfg.seed, index),
                R.CREATED_AT: created,
                "combination_index": index,
                "concept_ids": ids,
                "concepts": [pool.concepts[c] for c in ids],
                "level": level,
                "pool_version": pool.version,
                R.STATUS: R.STATUS_FILTERED if dup else R.STATUS_OK,
                R.REASON: R.REASON_DUPLICATE_COMBINATION if dup else None,
            }
        )
    return pa.Table.from_pylist(rows, schema=COMBINATION_SCHEMA)


COMBINATION_SCHEMA = pa.schema(
    [
        *R.LINEAGE_FIELDS,
        ("combination_index", pa.int64()),
        ("concept_ids", pa.list_(pa.int32())),
        ("concepts", pa.list_(pa.string())),
        ("level", pa.string()),
        ("pool_version", pa.string()),
        (R.STATUS, pa.string()),
        (R.REASON, pa.string()),
    ]
)
