"""Counter-based random numbers for the combination sampler.

Uniform number k of combination i depends only on (seed, i, slot, attempt, lane): shards,
order and worker count cannot change a combination. Changing anything here changes which
combinations a seed gives: bump sampler.SAMPLER_VERSION then.
"""

from __future__ import annotations

import hashlib

import numpy as np

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)


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
