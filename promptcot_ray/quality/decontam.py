"""Decontamination: n-gram overlap of a problem with benchmark items and seed problems.

The index is every n-gram (default 13 normalised words) of every reference text, stored as
sorted 64-bit hashes; it is small (a few hundred thousand hashes for the four default
benchmarks), so the driver builds it once and ships it to the workers. A batch of problems is
checked with one vectorised lookup.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from promptcot_ray.quality.normalize import (
    WordHasher,
    batch_window_hashes,
    batch_word_hashes,
    window_hashes,
    words,
)

SEEDS_SOURCE = "seeds"


def benchmark_source(name: str) -> str:
    """The `matched_source` of a benchmark item, e.g. `benchmark:math500`."""
    return f"benchmark:{name}"


@dataclass(frozen=True)
class Reference:
    """One text a problem must not overlap with: a benchmark item or a seed problem."""

    source: str  # benchmark_source(name) or SEEDS_SOURCE
    item_id: str
    text: str


@dataclass(frozen=True)
class Hit:
    """The first reference n-gram found in a problem."""

    source: str
    item_id: str
    ngram: str


@dataclass(frozen=True)
class NgramIndex:
    """Sorted n-gram hashes, each with the reference it came from (highest priority wins)."""

    n: int
    keys: np.ndarray  # uint64, sorted, unique
    refs: np.ndarray  # int64 index into sources/item_ids, parallel to keys
    priorities: np.ndarray  # int64: the reference's source order; lower wins
    sources: tuple[str, ...]
    item_ids: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.keys)


def build_index(references: list[Reference], n: int) -> NgramIndex:
    """Index the n-grams of `references`; earlier sources win when two share an n-gram."""
    order = {s: i for i, s in enumerate(dict.fromkeys(r.source for r in references))}
    hasher = WordHasher()
    chunks, ref_ids, prios = [], [], []
    for i, ref in enumerate(references):
        h = window_hashes(hasher(words(ref.text)), n)
        chunks.append(h)
        ref_ids.append(np.full(len(h), i, dtype=np.int64))
        prios.append(np.full(len(h), order[ref.source], dtype=np.int64))
    keys = np.concatenate(chunks) if chunks else np.empty(0, np.uint64)
    refs = np.concatenate(ref_ids) if ref_ids else np.empty(0, np.int64)
    prio = np.concatenate(prios) if prios else np.empty(0, np.int64)
    # Sort by key, then priority, then reference order, and keep the first of each key.
    sort = np.lexsort((refs, prio, keys))
    keys, refs, prio = keys[sort], refs[sort], prio[sort]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = keys[1:] != keys[:-1]
    return NgramIndex(
        n=n,
        keys=keys[first],
        refs=refs[first],
        priorities=prio[first],
        sources=tuple(r.source for r in references),
        item_ids=tuple(r.item_id for r in references),
    )


def first_hits(index: NgramIndex, word_lists: list[list[str]]) -> list[Hit | None]:
    """For each problem (as its word list), the highest-priority, earliest reference n-gram.

    Priority follows the order of sources given to build_index (benchmarks first, then
    seeds), so a problem that overlaps both a benchmark and a seed is reported as contaminated.
    """
    hits: list[Hit | None] = [None] * len(word_lists)
    if not len(index) or not word_lists:
        return hits
    flat, rows, starts = batch_window_hashes(*batch_word_hashes(word_lists), index.n)
    if not len(flat):
        return hits
    pos = np.searchsorted(index.keys, flat).clip(max=len(index) - 1)
    found = np.flatnonzero(index.keys[pos] == flat)
    # Best hit per row: lowest priority, then earliest position in the problem.
    found = found[np.lexsort((starts[found], index.priorities[pos[found]], rows[found]))]
    seen: set[int] = set()
    for f in found:
        row = int(rows[f])
        if row in seen:
            continue
        seen.add(row)
        ref = int(index.refs[pos[f]])
        start = int(starts[f])
        gram = " ".join(word_lists[row][start : start + index.n])
        hits[row] = Hit(index.sources[ref], index.item_ids[ref], gram)
    return hits
