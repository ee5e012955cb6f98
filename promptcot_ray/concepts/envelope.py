"""The sampler's envelope: cheap upper bounds on every concept's softmax weight.

Concepts are cut into blocks of _BOUND_BLOCK ids; `block_max[c, b]`, the largest cosine
between concept c and a concept of block b (precomputed from E E^T), bounds the similarity
of every concept in b, so proposing a concept costs O(n / _BOUND_BLOCK) per combination.
Concepts with co-occurrence counts get their own part of the bound. Proposals are accepted
against the exact weight (see sampler.py), so the bound changes speed, never the result's
distribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from promptcot_ray.concepts.counter_rng import _uniforms

if TYPE_CHECKING:
    from promptcot_ray.concepts.sampler import CombinationSampler

_BOUND_BLOCK = 32  # concepts sharing one similarity bound
_GRAM_ROWS = 256  # rows per GEMM when precomputing block maxima
_LOG2E = 1.4426950408889634
_MANTISSA = float(1 << 23)
# The envelope is inflated by 2**(1/512) (2**14 units of the bit pattern), far above the
# float32 rounding in computing it for temperature >= sampler._FAST_MIN_TEMPERATURE.
_MARGIN_UNITS = float(1 << 14)
_MARGIN = 2.0 ** (1 / 512)
_MAX_FLOAT_BITS = 254 * _MANTISSA
_DEAD_TOTAL = 1e-30  # an envelope this small underflowed: draw that row exactly instead
_MAX_ATTEMPTS = 64  # rows not accepted by then (pathological envelopes) are drawn exactly
_REFINE_AFTER = 4  # from this attempt on, a rejection tightens the envelope (costs ~32 d)


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
