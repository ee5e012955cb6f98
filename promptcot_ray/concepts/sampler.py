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

import hashlib
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import sparse

from promptcot_ray.concepts.pool import ConceptPool
from promptcot_ray.records import LEVELS

# These constants are part of what "combination i of seed s" means: changing one may change
# which combinations a seed gives (never their distribution). Bump SAMPLER_VERSION then.
SAMPLER_VERSION = "1"
_COMBO_BLOCK = 2048  # combinations computed together, aligned to absolute indices
_BOUND_BLOCK = 32  # concepts sharing one similarity bound
_EXACT_ROWS = 64  # rows per GEMM in the exact (dense) softmax
_DENSE_MAX_CONCEPTS = 256  # pools this small always use the exact dense softmax (cheaper)

_GRAM_ROWS = 256  # rows per GEMM when precomputing block maxima
_LOG2E = 1.4426950408889634
_MANTISSA = float(1 << 23)
# The envelope is inflated by 2**(1/512) (2**14 units of the bit pattern), far above the
# float32 rounding in computing it for temperature >= _FAST_MIN_TEMPERATURE.
_MARGIN_UNITS = float(1 << 14)
_MARGIN = 2.0 ** (1 / 512)
_MAX_FLOAT_BITS = 254 * _MANTISSA
# Below this temperature every step uses the exact dense softmax: the envelope drops
# weights under 2**-126 of exp(-(smax + 1) / T), and at T >= 0.05 that is < 1e-16 of the mass.
_FAST_MIN_TEMPERATURE = 0.05
_DEAD_TOTAL = 1e-30  # an envelope this small underflowed: draw that row exactly instead
_DEGENERATE_NORM = 1e-6  # chosen embeddings summing to ~0: the mean has no direction, cos = 0
_MAX_ATTEMPTS = 64  # rows not accepted by then (pathological envelopes) are drawn exactly
_REFINE_AFTER = 4  # from this attempt on, a rejection tightens the envelope (costs ~32 d)
_MAX_SIZE = 126  # the counter has 7 bits for the slot (level + one per position)
_MAX_INDEX = 1 << 47

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


@dataclass(frozen=True)
class Combination:
    """One sampled combination: its index in the seed's sequence, concept ids, level."""

    index: int
    concept_ids: tuple[int, ...]
    level: str


def _seed_key(seed: int) -> np.uint64:
    digest = hashlib.blake2b(f"promptcot-combinations/{int(seed)}".encode(), digest_size=8)
    return np.uint64(int.from_bytes(digest.digest(), "little"))


def _uniforms(
    key: np.uint64, index: np.ndarray, slot: int, attempt: int = 0, lane: int = 0
) -> np.ndarray:
    """Uniforms in [0, 1) for (seed, combination index, slot, attempt, lane), one per index.

    SplitMix64 evaluated at counter positions: a keyed bijective hash, so each uniform costs
    a few vectorised uint64 operations. That is far cheaper than one `default_rng([seed, i])`
    per combination and, unlike drawing a fixed number upfront, gives a rejected proposal a
    fresh `attempt`.
    """
    counter = (index << np.uint64(16)) | np.uint64((slot << 9) | (attempt << 2) | lane)
    z = key + (counter + np.uint64(1)) * _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MIX1
    z = (z ^ (z >> np.uint64(27))) * _MIX2
    z ^= z >> np.uint64(31)
    return (z >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _block_maxima(embeddings: np.ndarray) -> np.ndarray:
    """float32 (n, n_blocks): max over j in block b, j != c, of cos(e_c, e_j), plus a slack.

    The slack exceeds the worst-case float32 GEMM error (d * 2**-24 for unit vectors), so
    the bound holds against cosines recomputed in float64. Cost: half of E E^T, since each
    tile of the upper triangle gives the row maxima and (transposed) the column maxima.
    """
    n, dim = embeddings.shape
    n_pad = -(-n // _GRAM_ROWS) * _GRAM_ROWS
    padded = np.zeros((n_pad, dim), np.float32)
    padded[:n] = embeddings
    out = np.empty((n_pad, n_pad // _BOUND_BLOCK), np.float32)
    for lo in range(0, n_pad, _GRAM_ROWS):
        hi, first_block, last_block = (
            lo + _GRAM_ROWS,
            lo // _BOUND_BLOCK,
            (lo + _GRAM_ROWS) // _BOUND_BLOCK,
        )
        gram = padded[lo:hi] @ padded[lo:].T  # (rows lo:hi) x (columns lo:)
        gram[:, max(n - lo, 0) :] = -2.0  # padding and the concept itself are never candidates
        gram[max(n - lo, 0) :, :] = -2.0
        gram[np.arange(_GRAM_ROWS), np.arange(_GRAM_ROWS)] = -2.0
        right = gram.reshape(_GRAM_ROWS, -1, _BOUND_BLOCK).max(axis=2)  # rows lo:hi
        below = gram.T.reshape(n_pad - lo, -1, _BOUND_BLOCK).max(axis=2)  # rows lo:, transposed
        out[lo:hi, first_block:] = right
        out[hi:, first_block:last_block] = below[_GRAM_ROWS:]
        # The diagonal tile is both; max() keeps a bound if G[i, j] and G[j, i] differ in a bit.
        diagonal = right[:, : last_block - first_block]
        out[lo:hi, first_block:last_block] = np.maximum(diagonal, below[:_GRAM_ROWS])
    return out[:n, : -(-n // _BOUND_BLOCK)] + np.float32(2 * dim * 2.0**-24 + 1e-6)


@dataclass(frozen=True)
class _Support:
    """Co-occurrence sums of one step at unused concepts (sparse, row-sorted), and row max."""

    rows: np.ndarray
    cols: np.ndarray
    counts: np.ndarray  # float64, exact below 2**53
    smax: np.ndarray  # (B,) max(0, largest sum at an unused concept)

    def count_at(self, rows: np.ndarray, cols: np.ndarray, n: int) -> np.ndarray:
        """The co-occurrence sum at each (row, col); 0 off the support."""
        if not len(self.rows):
            return np.zeros(len(rows))
        keys = self.rows * n + self.cols  # ascending: CSR order with sorted indices
        query = rows * n + cols
        pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
        return np.where(keys[pos] == query, self.counts[pos], 0.0)


def _support(cooc: sparse.csr_matrix, chosen: np.ndarray) -> _Support:
    """Co-occurrence row sums over each combination's chosen set: one sparse product."""
    b, k = chosen.shape
    indicator = sparse.csr_matrix(
        (np.ones(b * k, np.int64), chosen.ravel(), np.arange(0, b * k + 1, k)),
        shape=(b, cooc.shape[0]),
    )
    sums = indicator @ cooc
    sums.sort_indices()
    rows = np.repeat(np.arange(b), np.diff(sums.indptr))
    cols = sums.indices.astype(np.int64)
    keep = ~(cols[:, None] == chosen[rows]).any(axis=1)
    rows, cols, counts = rows[keep], cols[keep], sums.data[keep].astype(np.float64)
    smax = np.zeros(b)
    np.maximum.at(smax, rows, counts)
    return _Support(rows, cols, counts, smax)


def _upper_exp(log_weight_bits: np.ndarray) -> np.ndarray:
    """float32 >= exp(x) from y = (x log2 e + 127) * 2**23 (+ margin), without calling exp.

    A float32 whose bit pattern is the integer floor(y) equals 2**floor(t) * (1 + frac(t))
    >= 2**t = e**x (t = x log2 e, since 1 + f >= 2**f on [0, 1]), at most 6.2% above it.
    """
    np.clip(log_weight_bits, 0.0, _MAX_FLOAT_BITS, out=log_weight_bits)
    return log_weight_bits.astype(np.int32).view(np.float32)


def _first_above(cdf: np.ndarray, target: np.ndarray, mass: np.ndarray) -> np.ndarray:
    """Per row, the first index whose cumulative value exceeds target (inverse CDF).

    If rounding puts the target past the end, the last index with positive `mass`.
    """
    found = (cdf <= target[:, None]).sum(axis=1)
    over = found >= cdf.shape[1]
    if over.any():
        found[over] = cdf.shape[1] - 1 - np.argmax(mass[over][:, ::-1] > 0, axis=1)
    return found


class _Envelope:
    """Adaptive rejection sampling of one step for a block of combinations; exact draws.

    Proposal mass per row: for each bound block, (bound on one concept's weight without
    counts) x (block size); for each support entry, a bound on its weight with its counts.
    A proposed block yields a uniform concept in it, accepted w.p. weight / bound if unused
    and off the support; a support entry is accepted w.p. weight / bound. A rejection
    tightens the envelope where it failed: the block, or all support entries of the row,
    get their exact weights (the envelope stays above the weights, so draws stay exact).
    """

    def __init__(self, sampler: CombinationSampler, chosen, upper, total, inv_norm, sup):
        self.s, self.chosen, self.sup = sampler, chosen, sup
        self.total, self.inv_norm = total, inv_norm
        scale = _MANTISSA * _LOG2E / sampler.temperature
        offset = _MANTISSA * 127.0 - scale * (sup.smax + 1.0) + _MARGIN_UNITS
        bits = upper * (scale * inv_norm).astype(np.float32)[:, None]
        bits += offset.astype(np.float32)[:, None]
        self.bound = _upper_exp(bits)
        self.block_mass = self.bound * sampler._block_size  # float64 (B, n_blocks)
        cos_bound = upper[sup.rows, sup.cols // _BOUND_BLOCK] * inv_norm[sup.rows]
        log_bound = (sup.counts + cos_bound - sup.smax[sup.rows] - 1.0) / sampler.temperature
        self.sup_bound = np.exp(log_bound) * _MARGIN
        row_ids = np.arange(len(upper))
        self.sup_start = np.searchsorted(sup.rows, row_ids, side="left")
        self.sup_end = np.searchsorted(sup.rows, row_ids, side="right")
        self.ref_keys = np.zeros(0, np.int64)  # refined (row * n_blocks + block), sorted
        self.ref_cdf = np.zeros((0, _BOUND_BLOCK))  # their cumulative exact weights
        self.block_cdf = np.cumsum(self.block_mass, axis=1)
        self.sup_cdf = np.zeros(len(sup.rows))  # cumulative bound within the entry's row
        self.sup_total = np.zeros(len(upper))
        self._refresh_support(row_ids)

    def _support_entries(self, rows: np.ndarray) -> np.ndarray:
        """Indices of all support entries of `rows`, row by row."""
        lengths = self.sup_end[rows] - self.sup_start[rows]
        offsets = np.repeat(self.sup_start[rows] - (np.cumsum(lengths) - lengths), lengths)
        return np.arange(lengths.sum()) + offsets

    def _refresh_support(self, rows: np.ndarray) -> None:
        rows = rows[self.sup_end[rows] > self.sup_start[rows]]
        entries = self._support_entries(rows)
        cum = np.cumsum(self.sup_bound[entries])
        lengths = self.sup_end[rows] - self.sup_start[rows]
        before = np.repeat(np.concatenate([[0.0], cum])[np.cumsum(lengths) - lengths], lengths)
        self.sup_cdf[entries] = cum - before
        self.sup_total[rows] = self.sup_cdf[self.sup_end[rows] - 1]

    def _log_weight(self, rows, cols, counts) -> np.ndarray:
        """Exact log weight of concept `cols` in row `rows`, shifted by (smax + 1) / T."""
        dots = np.einsum("...d,...d->...", self.s._emb64[cols], self.total[rows])
        cos = dots * self.inv_norm[rows]
        return (counts + cos - self.sup.smax[rows] - 1.0) / self.s.temperature

    def draw(self, key: np.uint64, index: np.ndarray, slot: int, picks: np.ndarray) -> None:
        """Fill `picks` for rows whose envelope did not underflow; others stay -1."""
        mass = self.block_cdf[:, -1] + self.sup_total
        pending = np.flatnonzero(mass > _DEAD_TOTAL)
        for attempt in range(_MAX_ATTEMPTS):
            if not pending.size:
                return
            r = pending
            lanes = [_uniforms(key, index[r], slot, attempt, lane) for lane in range(3)]
            target = lanes[0] * (self.block_cdf[r, -1] + self.sup_total[r])
            in_blocks = (target < self.block_cdf[r, -1]) | (self.sup_total[r] <= 0)
            cols, accept = np.empty(len(r), np.int64), np.empty(len(r), bool)
            b, t = np.flatnonzero(in_blocks), np.flatnonzero(~in_blocks)
            refine = attempt >= _REFINE_AFTER
            cols[b], accept[b] = self._try_blocks(r[b], target[b], lanes[2][b], lanes[1][b], refine)
            target_t = target[t] - self.block_cdf[r[t], -1]
            cols[t], accept[t] = self._try_support(r[t], target_t, lanes[1][t], refine)
            picks[r[accept]] = cols[accept]
            pending = r[~accept]

    def _try_blocks(self, rows, target, u_pick, u_accept, refine: bool):
        n_blocks = self.block_mass.shape[1]
        block = _first_above(self.block_cdf[rows], target, self.block_mass[rows])
        keys = rows * n_blocks + block
        pos = np.minimum(np.searchsorted(self.ref_keys, keys), max(len(self.ref_keys) - 1, 0))
        refined = self.ref_keys[pos] == keys if len(self.ref_keys) else np.zeros(len(rows), bool)
        cols, accept = np.empty(len(rows), np.int64), np.ones(len(rows), bool)
        if refined.any():  # exact weights: inverse CDF inside the block, always accepted
            cdf = self.ref_cdf[pos[refined]]
            local = _first_above(cdf, u_pick[refined] * cdf[:, -1], np.diff(cdf, prepend=0.0))
            cols[refined] = block[refined] * _BOUND_BLOCK + local
        fresh = ~refined
        rf, bf = rows[fresh], block[fresh]
        size = self.s._block_size[bf]
        c = bf * _BOUND_BLOCK + np.minimum(u_pick[fresh] * size, size - 1).astype(np.int64)
        weight = np.exp(self._log_weight(rf, c, 0.0))
        ok = ~(c[:, None] == self.chosen[rf]).any(axis=1)
        ok &= self.sup.count_at(rf, c, self.s._n) == 0
        ok &= u_accept[fresh] * self.bound[rf, bf] <= weight
        cols[fresh], accept[fresh] = c, ok
        if refine and not ok.all():
            self._refine_blocks(rf[~ok], bf[~ok])
        return cols, accept

    def _refine_blocks(self, rows: np.ndarray, blocks: np.ndarray) -> None:
        """Replace the bounds of (row, block) pairs by the exact weights of their concepts."""
        cols = blocks[:, None] * _BOUND_BLOCK + np.arange(_BOUND_BLOCK)
        real = cols < self.s._n
        cols = np.minimum(cols, self.s._n - 1)
        weight = np.exp(self._log_weight(rows[:, None], cols, 0.0))
        used = (cols[:, :, None] == self.chosen[rows][:, None, :]).any(axis=2)
        counted = self.sup.count_at(np.repeat(rows, _BOUND_BLOCK), cols.ravel(), self.s._n) > 0
        weight[~real | used | counted.reshape(cols.shape)] = 0.0
        keys = np.concatenate([self.ref_keys, rows * self.block_mass.shape[1] + blocks])
        order = np.argsort(keys, kind="stable")
        self.ref_keys = keys[order]
        self.ref_cdf = np.concatenate([self.ref_cdf, np.cumsum(weight, axis=1)])[order]
        self.block_mass[rows, blocks] = weight.sum(axis=1)
        touched = np.unique(rows)
        self.block_cdf[touched] = np.cumsum(self.block_mass[touched], axis=1)

    def _try_support(self, rows, target, u_accept, refine: bool):
        start, end = self.sup_start[rows], self.sup_end[rows]
        width = int((end - start).max()) if len(rows) else 0
        entries = start[:, None] + np.arange(width)
        inside = entries < end[:, None]
        cdf = np.where(inside, self.sup_cdf[np.minimum(entries, end[:, None] - 1)], np.inf)
        entry = np.minimum(start + (cdf <= target[:, None]).sum(axis=1), end - 1)
        cols = self.sup.cols[entry]
        weight = np.exp(self._log_weight(rows, cols, self.sup.counts[entry]))
        accept = u_accept * self.sup_bound[entry] <= weight
        if refine and not accept.all():  # give every support entry of the rows its weight
            rejected = np.unique(rows[~accept])
            fix = self._support_entries(rejected)
            self.sup_bound[fix] = np.exp(
                self._log_weight(self.sup.rows[fix], self.sup.cols[fix], self.sup.counts[fix])
            )
            self._refresh_support(rejected)
        return cols, accept


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
