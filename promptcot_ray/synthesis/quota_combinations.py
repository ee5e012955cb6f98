"""A quota round's combinations: sampled by index in steps, as far as the waves need.

Combination i depends only on (pool, seed, i), so the round's combinations are a prefix
0..N-1 of one sequence; `_SUCCESS.json` records N (the commit) and each step is one file
named by its first index. Extending samples steps N, N+step, ... in parallel Ray tasks; the
driver then walks the steps in index order with vectorised numpy to decide each row: a
concept set seen earlier in this round is a duplicate, one used by an earlier round of the
run is not reused, and a fresh one is sent only while its level still needs combinations
in this wave (else `level_quota_covered`). Those decisions are written into the files, so a
re-run replays them instead of deciding again.
"""

from __future__ import annotations

import logging
import math
import posixpath

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from promptcot_ray import layout
from promptcot_ray import records as R
from promptcot_ray.concepts.pool import ConceptPool
from promptcot_ray.config import config_hash
from promptcot_ray.storage import RunDir
from promptcot_ray.synthesis import combinations as combos_mod
from promptcot_ray.synthesis import quota as Q
from promptcot_ray.synthesis.config import SynthesizeConfig

logger = logging.getLogger(__name__)

MAX_STEPS_PER_BATCH = 64  # sampling tasks launched at once (bounds driver memory)
EXHAUSTED_AFTER_STEPS = 8  # this many steps in a row with nothing fresh: the pool is used up
_MIX = np.uint64(0x9E3779B97F4A7C15)


def combination_keys(concept_ids: np.ndarray) -> np.ndarray:
    """A 64-bit key per concept set (order ignored). Two sets share a key only by hash
    collision (about 1e-7 for a 2M-combination round): that combination is then skipped
    as a duplicate, which costs one combination and never mixes data."""
    ids = np.sort(np.asarray(concept_ids, np.int64), axis=1).astype(np.uint64)
    key = np.full(len(ids), np.uint64(0xCBF29CE484222325))
    with np.errstate(over="ignore"):
        for column in ids.T:
            key = (key ^ (column + _MIX)) * np.uint64(0x100000001B3)
            key ^= key >> np.uint64(29)
    return key


def _step_file(rel: str, start: int) -> str:
    return posixpath.join(rel, f"part-{start:012d}.parquet")


def _start_of(path: str) -> int:
    return int(posixpath.basename(path)[len("part-") : -len(".parquet")])


def _write_step(run, rel, pool, ccfg, start, arrays, reasons) -> int:
    table = combos_mod.combinations_table(pool, ccfg, start, arrays, None, reasons)
    run.write_table(_step_file(rel, start), table)
    return table.num_rows


class QuotaCombinations:
    """The committed prefix of a quota round's combinations, and its extension."""

    def __init__(self, run: RunDir, pool: ConceptPool, cfg: SynthesizeConfig) -> None:
        assert cfg.quota is not None
        self.run, self.pool, self.cfg, self.quota = run, pool, cfg, cfg.quota
        self.rel = layout.round_part(cfg.round, "combinations")
        self.key = self._key()
        marker = run.read_json(f"{self.rel}/_SUCCESS.json") if run.is_complete(self.rel) else {}
        if marker and marker.get("key") != self.key:
            from promptcot_ray.synthesis.job import JobFailed

            raise JobFailed(
                f"{run.uri_of(self.rel)} was sampled with another combinations config, pool "
                "or sample_step; use a new storage.run_dir or round, or restore the settings"
            )
        self.rows = int(marker.get("rows", 0))
        self.waves = int(marker.get("waves", 0))
        self.exhausted = bool(marker.get("exhausted", False))
        levels = cfg.combinations.levels
        self._bucket_by_level = np.array([Q.bucket_of(v, self.quota) for v in levels])
        self.earlier = self._earlier_round_keys()
        self._held: tuple[int, pa.Table] | None = None  # (rows, the last table read)
        committed = self.table(["concept_ids"])
        self.seen = np.unique(combination_keys(_ids_matrix(committed["concept_ids"])))

    def _key(self) -> str:
        # num_combinations and shard_size do not apply here; the step does (file names)
        ccfg = self.cfg.combinations.model_copy(update={"num_combinations": 1, "shard_size": 1})
        return f"quota:{config_hash(ccfg)}:{self.pool.version}:{self.quota.sample_step}"

    def table(self, columns: list[str]) -> pa.Table:
        """`columns` of the committed combinations (every run reads the same rows back).

        The last table read is kept until the next extension: a wave's pipeline, its progress
        count and finalize ask for the same rows, and the read happens once."""
        held = self._held
        if held is not None and held[0] == self.rows and set(columns) <= set(held[1].column_names):
            return held[1].select(columns)
        files = [f for f in self.run.list_files(self.rel, ".parquet") if _start_of(f) < self.rows]
        empty = pa.schema([combos_mod.COMBINATION_SCHEMA.field(c) for c in columns])
        table = self.run.read_files(files, columns) if files else empty.empty_table()
        self._held = (self.rows, table)
        return table

    def _earlier_round_keys(self) -> np.ndarray:
        """Concept sets earlier rounds of this run sent to their generator (same pool)."""
        keys = [np.empty(0, np.uint64)]
        for k in range(self.cfg.round):  # a handful of rounds, one concurrent read each
            t = self.run.read_table(
                layout.round_part(k, "combinations"),
                ["concept_ids", "pool_version", R.STATUS],
            )
            if t is None:
                continue
            used = pc.and_(
                pc.equal(t[R.STATUS], R.STATUS_OK), pc.equal(t["pool_version"], self.pool.version)
            )
            keys.append(combination_keys(_ids_matrix(t.filter(used)["concept_ids"])))
        return np.unique(np.concatenate(keys))

    def extend(self, needs: dict[str, int]) -> dict[str, int]:
        """Sample until every bucket's need is met (or the pool runs dry); commit; return how
        many combinations each bucket got."""
        import ray

        for f in self.run.list_files(self.rel, ".parquet"):  # an interrupted extension's steps
            if _start_of(f) >= self.rows:
                self.run.delete_file(f)
        step, ccfg = self.quota.sample_step, self.cfg.combinations
        left = {b: n for b, n in needs.items() if n > 0}
        got = dict.fromkeys(left, 0)
        sample = ray.remote(num_cpus=combos_mod.SAMPLING_TASK_CPUS)(combos_mod._sample_shard)
        write = ray.remote(num_cpus=combos_mod.SAMPLING_TASK_CPUS)(_write_step)
        pool_ref, writes, start, dry = ray.put(self.pool), [], self.rows, 0
        while left and dry < EXHAUSTED_AFTER_STEPS:
            starts = [start + i * step for i in range(self._steps_for(left))]
            refs = [sample.remote(pool_ref, ccfg, s, step) for s in starts]
            for s, arrays in zip(starts, ray.get(refs), strict=True):
                reasons, taken = self._decide(arrays, left)
                writes.append(write.remote(self.run, self.rel, pool_ref, ccfg, s, arrays, reasons))
                for b, n in taken.items():
                    got[b] += n
                    left[b] -= n
                left = {b: n for b, n in left.items() if n > 0}
                dry = 0 if sum(taken.values()) else dry + 1
                start = s + step
                if not left or dry >= EXHAUSTED_AFTER_STEPS:
                    break
        ray.get(writes)
        self.exhausted = bool(left)
        self.rows, self.waves = start, self.waves + 1
        info = {"key": self.key, "rows": self.rows, "waves": self.waves}
        self.run.mark_complete(self.rel, {**info, "exhausted": self.exhausted})
        return got

    def _steps_for(self, left: dict[str, int]) -> int:
        """Steps to sample at once: the need over the share of indexes that can serve it."""
        open_share = np.isin(self._bucket_by_level, list(left)).mean()
        fresh_share = len(self.seen) / self.rows if self.rows else 1.0
        indexes = sum(left.values()) / max(open_share * max(fresh_share, 0.05), 1e-9)
        return int(min(MAX_STEPS_PER_BATCH, max(1, math.ceil(indexes / self.quota.sample_step))))

    def _decide(self, arrays, left: dict[str, int]) -> tuple[pa.Array, dict[str, int]]:
        """Each row's reason (null = sent) for one step, in index order; the seen set grows."""
        concept_ids, level_idx = arrays
        keys = combination_keys(concept_ids)
        _, first = np.unique(keys, return_index=True)
        repeat = np.ones(len(keys), bool)
        repeat[first] = False  # an earlier row of this same step has the set
        repeat |= np.isin(keys, self.seen)
        earlier = ~repeat & np.isin(keys, self.earlier)
        fresh = ~repeat & ~earlier
        buckets = self._bucket_by_level[level_idx.astype(np.int64)]
        take = Q.select(buckets, fresh, left)
        self.seen = np.union1d(self.seen, keys)
        reason = np.full(len(keys), None, object)
        reason[repeat] = R.REASON_DUPLICATE_COMBINATION
        reason[earlier] = R.REASON_USED_IN_EARLIER_ROUND
        reason[fresh & ~take] = R.REASON_LEVEL_QUOTA_COVERED
        taken = {b: int((take & (buckets == b)).sum()) for b in left}
        return pa.array(reason, pa.string()), taken


def _ids_matrix(column: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A list<int32> column of equal-length lists as an (n, size) int array."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    n = len(column)
    if not n:
        return np.empty((0, 1), np.int64)
    flat = column.flatten().to_numpy(zero_copy_only=False)
    return flat.reshape(n, -1)
