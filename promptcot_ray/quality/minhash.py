"""MinHash signatures of word shingles and the LSH band keys that group near-duplicates.

Signatures are datasketch `MinHash`es (scheme affine32, fixed seed and num_perm) over 32-bit
shingle hashes, so any worker computes the same signature for the same text. Rows that share
any band key become candidate pairs; candidates are then verified with the estimated Jaccard
similarity (share of equal signature slots), as datasketch's `MinHash.jaccard` does.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
from datasketch import LeanMinHash, MinHash
from datasketch.lsh import _optimal_param
from datasketch.minhash import _fmix

from promptcot_ray.quality.normalize import batch_window_hashes, fmix64, window_hashes

MINHASH_SEED = 1  # datasketch's default; part of what makes signatures comparable across runs
_EXACT_BAND = 0xFFFF  # band index reserved for the exact-text key (see exact_keys)
_CHUNK_SHINGLES = 32768  # shingles per vectorised step: 32768 x 128 uint32 = 16 MiB


def _identity(value: int) -> int:
    return value


@lru_cache(maxsize=8)
def lsh_bands(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows per band) for a Jaccard threshold, from datasketch's optimiser.

    Candidates are verified with the signatures afterwards, so a false positive costs only
    a check while a false negative is a missed duplicate: false negatives weigh 0.9. With
    equal weights (9 bands of 13 rows at 0.8/128) a pair at Jaccard 0.88 is found only 85%
    of the time; with these weights (14 bands of 9 rows) 99.6%.
    """
    return _optimal_param(threshold, num_perm, 0.1, 0.9)


class MinHasher:
    """Computes MinHash signatures of word-shingle sets with shared permutations."""

    def __init__(self, num_perm: int, shingle: int, seed: int = MINHASH_SEED) -> None:
        self.num_perm, self.shingle, self.seed = num_perm, shingle, seed
        # Build the permutations once; a MinHash per row would re-seed RandomState each time.
        self.permutations = MinHash(num_perm=num_perm, seed=seed, scheme="affine32").permutations

    def signature(self, word_hashes: np.ndarray) -> np.ndarray | None:
        """uint32 signature of the row's shingles; None when the row has no words."""
        shingles = window_hashes(word_hashes, self.shingle)
        if len(shingles) == 0:
            return None
        m = MinHash(
            num_perm=self.num_perm,
            seed=self.seed,
            hashfunc=_identity,
            permutations=self.permutations,
            scheme="affine32",
        )
        m.update_batch((shingles >> np.uint64(32)).tolist())  # 32-bit values for affine32
        return LeanMinHash(m).hashvalues.astype(np.uint32, copy=False)

    def batch_signatures(
        self, flat: np.ndarray, lengths: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Signatures of a batch of rows at once: (uint32 array (rows with words, num_perm),
        boolean mask of those rows). Equal to `signature` row by row (datasketch affine32:
        fmix32 of each value, then a * h + b mod 2^32, minimum per slot); vectorised over
        the batch because one MinHash object per row costs more than the hashing."""
        shingles, rows, _ = batch_window_hashes(flat, lengths, self.shingle)
        has = np.zeros(len(lengths), dtype=bool)
        has[rows] = True
        hv = _fmix((shingles >> np.uint64(32)).astype(np.uint32), 32)
        a, b = (p.astype(np.uint32) for p in self.permutations)
        bounds = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])  # first shingle per row
        out = np.empty((len(bounds), self.num_perm), dtype=np.uint32)
        ends = np.r_[bounds[1:], len(rows)]
        i = 0
        while i < len(bounds):
            j = i + 1
            while j < len(bounds) and ends[j] - bounds[i] <= _CHUNK_SHINGLES:
                j += 1
            lo, hi = bounds[i], ends[j - 1]
            with np.errstate(over="ignore"):
                phv = hv[lo:hi, None] * a + b
            out[i:j] = np.minimum.reduceat(phv, bounds[i:j] - lo, axis=0)
            i = j
        return out, has


def band_keys(signatures: np.ndarray, bands: int, rows: int) -> np.ndarray:
    """uint64 LSH keys, shape (n, bands), of n signatures: each band's slots and its index."""
    sigs = np.atleast_2d(signatures)
    slots = sigs[:, : bands * rows].astype(np.uint64).reshape(len(sigs), bands, rows)
    mixed = np.zeros((len(sigs), bands), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for j in range(rows):
            mixed = fmix64(mixed * np.uint64(0x100000001B3) + slots[:, :, j])
    return fmix64(mixed ^ np.arange(1, bands + 1, dtype=np.uint64))


def exact_keys(text_hashes: np.ndarray) -> np.ndarray:
    """Bucket keys of exact-text groups, kept apart from band keys by their own tag."""
    tag = np.uint64(_EXACT_BAND << 48)
    return fmix64(np.asarray(text_hashes, dtype=np.uint64) ^ tag)


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Share of equal signature slots: the MinHash estimate of the Jaccard similarity."""
    return float(np.count_nonzero(a == b)) / float(len(a))
