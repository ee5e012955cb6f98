"""Exact and near-duplicate detection: per-batch features, bucket pairs, driver resolution.

Workers turn rows into bucket keys (one exact-text key plus one key per LSH band); rows that
share a key are paired inside their bucket. Only those pairs (few) reach the driver, where a
union-find keeps the smallest id of every group. Every step depends on row content alone, so
the result is the same whatever the batch split or worker count.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

import numpy as np
import pyarrow as pa

from promptcot_ray import records as R
from promptcot_ray.quality.minhash import estimated_jaccard

DUPLICATE_SOURCE = "accepted"  # matched_source of a duplicate: another accepted problem
MAX_ALL_PAIRS = 32  # above this many distinct texts in a bucket, pair by star + chain only

PAIRS_SCHEMA = pa.schema([("a", pa.string()), ("b", pa.string()), ("same_text", pa.bool_())])


@dataclass(frozen=True)
class Decision:
    """Why one row is removed and what it matched."""

    reason: str
    matched_id: str | None
    matched_source: str | None
    jaccard: float | None = None
    ngram: str | None = None


def bucket_pairs(ids: list[str], text_hashes: list[int]) -> list[tuple[str, str, bool]]:
    """Candidate pairs inside one bucket: same-text pairs, then pairs of distinct texts.

    Each text is represented by its smallest id. Rows with the same text pair with that
    representative; representatives pair with each other (all pairs up to MAX_ALL_PAIRS,
    else a star from the smallest plus a chain, which keeps large buckets linear).
    """
    order = sorted(zip(ids, text_hashes, strict=True))
    rep_of: dict[int, str] = {}
    pairs: list[tuple[str, str, bool]] = []
    for row_id, h in order:
        if h in rep_of:
            if rep_of[h] != row_id:
                pairs.append((rep_of[h], row_id, True))
        else:
            rep_of[h] = row_id
    reps = list(rep_of.values())  # insertion order = id order
    if len(reps) <= MAX_ALL_PAIRS:
        pairs += [(a, b, False) for i, a in enumerate(reps) for b in reps[i + 1 :]]
    else:
        pairs += [(reps[0], b, False) for b in reps[1:]]
        pairs += [(a, b, False) for a, b in pairwise(reps[1:])]
    return pairs


def partition_pairs(group: pa.Table) -> pa.Table:
    """Candidate pairs of every bucket in one partition of bucket rows (key, id, text_hash).

    One sort finds the runs of equal keys; only keys shared by several rows reach Python.
    Grouping by a coarse partition instead of by key keeps the shuffle to one and avoids
    an Arrow table per bucket (hundreds of thousands of tiny groups at 400k problems).
    """
    keys = group["key"].to_numpy()
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    starts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
    ends = np.r_[starts[1:], len(sorted_keys)]
    shared = (ends - starts) > 1
    ids = np.asarray(group[R.ID].to_pylist(), dtype=object)
    hashes = group["text_hash"].to_numpy()
    pairs: list[tuple[str, str, bool]] = []
    for lo, hi in zip(starts[shared].tolist(), ends[shared].tolist(), strict=True):
        take = order[lo:hi]
        pairs += bucket_pairs(ids[take].tolist(), hashes[take].tolist())
    return pa.Table.from_pylist(
        [{"a": a, "b": b, "same_text": s} for a, b, s in pairs], schema=PAIRS_SCHEMA
    )


class UnionFind:
    """Union-find whose root is always the smallest id of its set."""

    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        parent = self.parent
        root = parent.setdefault(x, x)
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            lo, hi = (ra, rb) if ra < rb else (rb, ra)
            self.parent[hi] = lo


def near_pair_ids(pairs: Iterable[tuple[str, str, bool]]) -> set[str]:
    """Ids whose signatures resolve_duplicates needs (endpoints of distinct-text pairs)."""
    return {x for a, b, same in pairs if not same for x in (a, b)}


def resolve_duplicates(
    pairs: Iterable[tuple[str, str, bool]],
    signatures: dict[str, np.ndarray],
    threshold: float,
) -> dict[str, Decision]:
    """Removal decisions for duplicates; the smallest id of each connected group is kept.

    Same-text pairs join exact groups; distinct-text pairs join the groups' representatives
    when their estimated Jaccard is at least `threshold`. A removed row matches its group's
    kept id: an exact duplicate if the texts are equal, else a near-duplicate with the
    estimated Jaccard to the kept row (a chain of near-duplicates can give less).
    """
    pairs = sorted(set(pairs))
    exact = UnionFind()
    for a, b, same in pairs:
        if same:
            exact.union(a, b)
    sig_of = {exact.find(i): s for i, s in signatures.items()}
    near = UnionFind()
    for a, b, same in pairs:
        ra, rb = exact.find(a), exact.find(b)
        if same or ra == rb:
            continue
        if estimated_jaccard(sig_of[ra], sig_of[rb]) >= threshold:
            near.union(ra, rb)
    decisions: dict[str, Decision] = {}
    for row_id in sorted(set(exact.parent) | set(near.parent)):
        root = exact.find(row_id)
        kept = near.find(root)
        if row_id == kept:
            continue
        if root == kept:
            decisions[row_id] = Decision(R.REASON_EXACT_DUPLICATE, kept, DUPLICATE_SOURCE)
        else:
            j = round(estimated_jaccard(sig_of[root], sig_of[kept]), 4)
            decisions[row_id] = Decision(R.REASON_NEAR_DUPLICATE, kept, DUPLICATE_SOURCE, j)
    return decisions
