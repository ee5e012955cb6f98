"""Concept-combination sampling (method step 4): batched, exact, deterministic per index.

Definition: the first concept is drawn in proportion to frequency. Each next concept j gets
score_j = (sum of its co-occurrence counts with the chosen concepts) + cos(e_j, normalised
mean of the chosen embeddings), and is drawn from softmax(score / temperature) over the
unused concepts. The level is uniform over `levels`. Each concept gets its own similarity
(the authors' released sampler adds similarities in nearest-neighbour rank order instead).

Combination i is a pure function of (pool, seed, i, size, temperature, levels): its random
numbers are counter-based (`_uniforms`), and combinations are computed in blocks of
_COMBO_BLOCK aligned to absolute indices, so every float operation on combination i is the
same whatever the shard boundaries, request order or worker count.

Speed: scoring all n concepts at every step (a GEMV and n exps) is what makes a plain
sampler slow. Here a step is an exact (adaptive) rejection sampler over a cheap envelope:
concepts are cut into blocks of _BOUND_BLOCK ids; `block_max[c, b]`, the largest cosine
between concept c and a concept of block b (precomputed from E E^T), bounds the similarity
of every concept in b, so a step costs O(n / _BOUND_BLOCK) per combination plus a few O(d)
checks. Concepts with co-occurrence counts form a separate part of the envelope. Small
pools and tiny temperatures use the exact dense softmax instead.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from promptcot_ray.concepts.counter_rng import _seed_key, _uniforms
from promptcot_ray.concepts.envelope import (
    _BOUND_BLOCK,
    _MAX_ATTEMPTS,
    _block_maxima,
    _Envelope,
    _support,
)
from promptcot_ray.concepts.pool import ConceptPool
from promptcot_ray.records import LEVELS

# These constants are part of what "combination i of seed s" means: changing one may change
# which combinations a seed gives (never their distribution). Bump SAMPLER_VERSION then.
SAMPLER_VERSION = "1"
_COMBO_BLOCK = 2048  # combinations computed together, aligned to absolute indices
_EXACT_ROWS = 64  # rows per GEMM in the exact (dense) softmax
_DENSE_MAX_CONCEPTS = 256  # pools this small always use the exact dense softmax (cheaper)
# Below this temperature every step uses the exact dense softmax: the envelope drops
# weights under 2**-126 of exp(-(smax + 1) / T), and at T >= 0.05 that is < 1e-16 of the mass.
_FAST_MIN_TEMPERATURE = 0.05
_DEGENERATE_NORM = 1e-6  # chosen embeddings summing to ~0: the mean has no direction, cos = 0
_MAX_SIZE = 126  # the counter has 7 bits for the slot (level + one per position)
_MAX_INDEX = 1 << 47


@dataclass(frozen=True)
class Combination:
    """One sampled combination: its index in the seed's sequence, concept ids, level."""

    index: int
    concept_ids: tuple[int, ...]
    level: str


class CombinationSampler:
    """Draws combinations from one pool; build it once per worker and reuse it.

    Building costs half of E E^T (about 3 s for 20k concepts of dim 384 on 2 cores) and
    keeps n * n / 32 float32 bounds (50 MB for 20k concepts). Not thread-safe.
    """

    def __init__(
        self,
        pool: ConceptPool,
        size: int = 5,
        temperature: float = 0.2,
        levels: Sequence[str] = LEVELS,
    ) -> None:
        _validate(pool, size, temperature, levels)
        self.pool, self.size, self.temperature = pool, size, float(temperature)
        self.levels = tuple(levels)
        self._n = pool.size
        self._cumfreq = np.cumsum(pool.frequency)
        self._last_positive = int(np.flatnonzero(pool.frequency)[-1])
        self._emb64 = pool.embeddings.astype(np.float64)
        self._dense = pool.size <= _DENSE_MAX_CONCEPTS or temperature < _FAST_MIN_TEMPERATURE
        n_blocks = -(-pool.size // _BOUND_BLOCK)
        if not self._dense:
            self._block_max = _block_maxima(pool.embeddings)
        else:  # never read: a zero-width stand-in keeps `_block` free of branches
            self._block_max = np.zeros((pool.size, 0), np.float32)
        self._block_size = np.full(n_blocks, _BOUND_BLOCK)
        self._block_size[-1] = self._n - _BOUND_BLOCK * (n_blocks - 1)

    def sample_arrays(self, seed: int, start: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        """Combinations start..start+count-1: concept ids int32 (count, size), level_idx int8."""
        if start < 0 or count < 0 or start + count > _MAX_INDEX:
            raise ValueError(
                f"need start >= 0, count >= 0, start + count <= 2**47; got {start=}, {count=}"
            )
        key = _seed_key(seed)
        ids = np.empty((count, self.size), np.int32)
        level_idx = np.empty(count, np.int8)
        end = start + count
        for block_start in range(start - start % _COMBO_BLOCK, end, _COMBO_BLOCK):
            block_ids, block_levels = self._block(key, block_start)
            lo, hi = max(start, block_start), min(end, block_start + _COMBO_BLOCK)
            ids[lo - start : hi - start] = block_ids[lo - block_start : hi - block_start]
            level_idx[lo - start : hi - start] = block_levels[lo - block_start : hi - block_start]
        return ids, level_idx

    def sample(self, seed: int, start: int, count: int) -> list[Combination]:
        """Combinations start..start+count-1 as `Combination` objects."""
        ids, level_idx = self.sample_arrays(seed, start, count)
        return [
            Combination(start + i, tuple(row), self.levels[lv])
            for i, (row, lv) in enumerate(zip(ids.tolist(), level_idx.tolist(), strict=True))
        ]

    def _block(self, key: np.uint64, block_start: int) -> tuple[np.ndarray, np.ndarray]:
        index = np.arange(block_start, block_start + _COMBO_BLOCK, dtype=np.uint64)
        n_levels = len(self.levels)
        levels = np.minimum((_uniforms(key, index, 0) * n_levels).astype(np.int64), n_levels - 1)
        chosen = np.empty((_COMBO_BLOCK, self.size), np.int64)
        target = _uniforms(key, index, 1) * float(self._cumfreq[-1])
        first = np.searchsorted(self._cumfreq, target, side="right")
        chosen[:, 0] = np.minimum(first, self._last_positive)
        upper = self._block_max[chosen[:, 0]]  # (B, blocks): bounds sum_c e_c . e_j in block
        total = self._emb64[chosen[:, 0]]  # sum of the chosen embeddings
        for step in range(1, self.size):
            picks = self._next(key, index, step + 1, chosen[:, :step], upper, total)
            chosen[:, step] = picks
            upper += self._block_max[picks]
            total += self._emb64[picks]
        return chosen.astype(np.int32), levels.astype(np.int8)

    def _next(self, key, index, slot, chosen, upper, total) -> np.ndarray:
        norm = np.linalg.norm(total, axis=1)
        inv_norm = np.where(norm > _DEGENERATE_NORM, 1.0 / np.maximum(norm, _DEGENERATE_NORM), 0)
        sup = _support(self.pool.cooccurrence, chosen)
        picks = np.full(len(index), -1, np.int64)
        if not self._dense:
            _Envelope(self, chosen, upper, total, inv_norm, sup).draw(key, index, slot, picks)
        rest = np.flatnonzero(picks < 0)
        if rest.size:
            u = _uniforms(key, index[rest], slot, _MAX_ATTEMPTS)
            picks[rest] = self._exact(u, rest, total, inv_norm, sup, chosen)
        return picks

    def _exact(self, u, rows, total, inv_norm, sup, chosen) -> np.ndarray:
        """Inverse-CDF draws from the exact dense softmax in float64.

        Used for small pools, temperatures below _FAST_MIN_TEMPERATURE, and rows the
        envelope could not serve (underflow, or _MAX_ATTEMPTS rejections).
        """
        picks = np.empty(len(rows), np.int64)
        for lo in range(0, len(rows), _EXACT_ROWS):
            part = rows[lo : lo + _EXACT_ROWS]
            scores = (total[part] @ self._emb64.T) * inv_norm[part, None]
            hit = np.isin(sup.rows, part)
            scores[np.searchsorted(part, sup.rows[hit]), sup.cols[hit]] += sup.counts[hit]
            scores[np.arange(len(part))[:, None], chosen[part]] = -np.inf
            scores -= scores.max(axis=1, keepdims=True)
            cdf = np.cumsum(np.exp(scores / self.temperature), axis=1)
            drawn = (cdf <= (u[lo : lo + _EXACT_ROWS] * cdf[:, -1])[:, None]).sum(axis=1)
            last = self._n - 1 - np.argmax(np.isfinite(scores[:, ::-1]), axis=1)
            picks[lo : lo + _EXACT_ROWS] = np.minimum(drawn, last)
        return picks


def _validate(pool: ConceptPool, size: int, temperature: float, levels: Sequence[str]) -> None:
    if pool.size == 0:
        raise ValueError("cannot sample combinations from an empty concept pool")
    if not 1 <= size <= min(pool.size, _MAX_SIZE):
        raise ValueError(
            f"size={size}: must be between 1 and the number of concepts ({pool.size}) "
            f"and at most {_MAX_SIZE}"
        )
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature={temperature}: must be a finite number > 0 (method: 0.2)")
    if not 1 <= len(levels) <= 127:
        raise ValueError(f"levels: need 1 to 127 levels, got {len(levels)}")
    if int(pool.frequency.sum()) <= 0:
        raise ValueError("every concept has frequency 0: the first concept cannot be drawn")


@lru_cache(maxsize=1)
def _shared_sampler(
    pool: ConceptPool, size: int, temperature: float, levels: tuple[str, ...]
) -> CombinationSampler:
    return CombinationSampler(pool, size, temperature, levels)


clear_sampler_cache = _shared_sampler.cache_clear


def sample_combination_arrays(
    pool: ConceptPool,
    seed: int,
    start: int,
    count: int,
    size: int = 5,
    temperature: float = 0.2,
    levels: Sequence[str] = LEVELS,
) -> tuple[np.ndarray, np.ndarray]:
    """Combinations start..start+count-1 of `seed`: concept ids int32 (count, size), level_idx int8.

    level_idx indexes `levels`. The process keeps the sampler of the latest (pool, size,
    temperature, levels), so a worker sampling many shards of one pool builds it once
    (`clear_sampler_cache()` frees it). ValueError on an empty pool, size > pool size or
    temperature <= 0.
    """
    sampler = _shared_sampler(pool, int(size), float(temperature), tuple(levels))
    return sampler.sample_arrays(seed, start, count)


def sample_combinations(
    pool: ConceptPool,
    seed: int,
    start: int,
    count: int,
    size: int = 5,
    temperature: float = 0.2,
    levels: Sequence[str] = LEVELS,
) -> list[Combination]:
    """`sample_combination_arrays` as a list of `Combination` (index, concept ids, level)."""
    sampler = _shared_sampler(pool, int(size), float(temperature), tuple(levels))
    return sampler.sample(seed, start, count)


def find_duplicate_combinations(concept_ids: np.ndarray) -> np.ndarray:
    """Mark row i True when an earlier row has the same concept set (order ignored)."""
    ids = np.asarray(concept_ids)
    if ids.ndim != 2:
        raise ValueError(f"concept_ids must be 2-D (combinations, size), got shape {ids.shape}")
    duplicate = np.ones(len(ids), bool)
    if len(ids):
        canonical = np.ascontiguousarray(np.sort(ids, axis=1).astype(np.int64))
        _, first = np.unique(canonical, axis=0, return_index=True)  # stable: first occurrences
        duplicate[first] = False
    return duplicate
