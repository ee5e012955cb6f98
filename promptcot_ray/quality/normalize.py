"""Text normalisation, word lists and stable hashes shared by every quality gate.

Two views of a problem: the normalised text (NFKC, casefolded, whitespace collapsed; it keeps
operators, so `x+1` and `x-1` stay different) keys exact duplicates, and its word list
(letters and digits only) feeds the shingles and n-grams of near-dedup and decontamination.
Every hash is derived from blake2b, never Python's salted `hash()`, so all workers agree.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

import numpy as np

_SPACE_RE = re.compile(r"\s+")
_WORD_RE = re.compile(r"[^\W_]+")
_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
# An odd 64-bit multiplier for the polynomial window hash (any odd constant works; this one
# is the golden-ratio constant used by splitmix64).
_WINDOW_BASE = np.uint64(0x9E3779B97F4A7C15)


def normalize_text(text: str | None) -> str:
    """The exact-duplicate key: NFKC, casefolded, whitespace collapsed and stripped."""
    return _SPACE_RE.sub(" ", unicodedata.normalize("NFKC", text or "")).strip().casefold()


def words(text: str | None) -> list[str]:
    """Normalised words (runs of letters and digits) of a problem."""
    return _WORD_RE.findall(normalize_text(text))


def words_of_normalized(normalized: str) -> list[str]:
    """words() of a text already passed through normalize_text (saves normalising twice)."""
    return _WORD_RE.findall(normalized)


def hash64(text: str) -> int:
    """A stable 64-bit hash of a string (the same on every machine and process)."""
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=8).digest(), "little")


def text_hash(text: str | None) -> int:
    """The exact-duplicate hash of a problem: hash64 of its normalised text."""
    return hash64(normalize_text(text))


def fmix64(values: np.ndarray) -> np.ndarray:
    """MurmurHash3's 64-bit finaliser: spreads the bits of weakly mixed uint64 values."""
    v = values.astype(np.uint64, copy=True)
    with np.errstate(over="ignore"):
        v ^= v >> np.uint64(33)
        v *= np.uint64(0xFF51AFD7ED558CCD)
        v ^= v >> np.uint64(33)
        v *= np.uint64(0xC4CEB93FE53B3E0B)
        v ^= v >> np.uint64(33)
    return v


class WordHasher:
    """Maps words to stable uint64 hashes, caching them (a batch repeats most of its words)."""

    def __init__(self) -> None:
        self._cache: dict[str, int] = {}

    def __call__(self, word_list: list[str]) -> np.ndarray:
        cache = self._cache
        out = np.empty(len(word_list), dtype=np.uint64)
        for i, word in enumerate(word_list):
            h = cache.get(word)
            if h is None:
                h = cache[word] = hash64(word)
            out[i] = h
        return out


def batch_word_hashes(word_lists: list[list[str]]) -> tuple[np.ndarray, np.ndarray]:
    """Word hashes of a whole batch, flattened, and each row's word count.

    Words are factorised first (pandas, a C hash table), so each distinct word of the
    batch is hashed once with blake2b.
    """
    import pandas as pd

    lengths = np.fromiter((len(w) for w in word_lists), dtype=np.int64, count=len(word_lists))
    flat = [w for ws in word_lists for w in ws]
    if not flat:
        return np.empty(0, dtype=np.uint64), lengths
    codes, uniques = pd.factorize(pd.Series(flat, dtype=object), sort=False)
    table = np.fromiter((hash64(w) for w in uniques), dtype=np.uint64, count=len(uniques))
    return table[codes], lengths


def _poly_hash(windows: np.ndarray, width: int) -> np.ndarray:
    with np.errstate(over="ignore"):
        powers = np.cumprod(np.full(width, _WINDOW_BASE, dtype=np.uint64))[::-1]
        mixed = (windows * powers).sum(axis=1, dtype=np.uint64) + np.uint64(width)
    return fmix64(mixed)


def batch_window_hashes(
    flat: np.ndarray, lengths: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """window_hashes of every row of a batch at once: (hashes, row of each, start of each).

    Results are ordered by row, then start; windows that would cross rows are skipped.
    """
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    counts = np.where(lengths >= n, lengths - n + 1, np.minimum(lengths, 1))
    rows = np.repeat(np.arange(len(lengths)), counts)
    starts = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
    hashes = np.empty(len(rows), dtype=np.uint64)
    long = lengths[rows] >= n
    if long.any():
        windows = np.lib.stride_tricks.sliding_window_view(flat, n)
        hashes[long] = _poly_hash(windows[offsets[rows[long]] + starts[long]], n)
    for i in np.flatnonzero(~long):  # rows shorter than n: one window of all their words
        r = rows[i]
        hashes[i] = _poly_hash(flat[offsets[r] : offsets[r] + lengths[r]][None, :], lengths[r])[0]
    return hashes, rows, starts


def window_hashes(word_hashes: np.ndarray, n: int) -> np.ndarray:
    """uint64 hashes of every run of `n` consecutive words (one per start position).

    A text shorter than `n` words gets a single hash of all its words, so a short benchmark
    item still matches a problem that is exactly that item; an empty text gets none.
    """
    if len(word_hashes) == 0:
        return np.empty(0, dtype=np.uint64)
    width = min(n, len(word_hashes))
    return _poly_hash(np.lib.stride_tricks.sliding_window_view(word_hashes, width), width)
