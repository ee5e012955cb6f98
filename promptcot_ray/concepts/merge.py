"""Merge near-identical concepts ("Pigeonhole principle" / "The pigeonhole principle")."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from promptcot_ray.concepts.normalize import normalize_concept
from promptcot_ray.concepts.pool import ConceptPool

_BLOCK = 2048  # rows of the similarity matrix held at once: memory stays O(block x n)


def merge_map(pool: ConceptPool, threshold: float) -> dict[str, str]:
    """Normalised concept -> representative text, for concepts with cosine >= threshold.

    Groups are connected components of the "similar enough" graph; each maps to its most
    frequent member (ties: the smaller id), so the result does not depend on input order.
    """
    n = len(pool.concepts)
    rows, cols = [], []
    for lo in range(0, n, _BLOCK):
        sims = pool.embeddings[lo : lo + _BLOCK] @ pool.embeddings.T
        r, c = np.nonzero(sims >= threshold)
        keep = r + lo < c  # upper triangle, no self-pairs
        rows.append(r[keep] + lo)
        cols.append(c[keep])
    r = np.concatenate(rows) if rows else np.array([], int)
    c = np.concatenate(cols) if cols else np.array([], int)
    graph = coo_matrix((np.ones(len(r)), (r, c)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    best: dict[int, int] = {}
    for i in range(n):
        j = best.get(labels[i])
        if j is None or (pool.frequency[i], -i) > (pool.frequency[j], -j):
            best[labels[i]] = i
    return {normalize_concept(pool.concepts[i]): pool.concepts[best[labels[i]]] for i in range(n)}


def apply_merge(lists: Sequence[Sequence[str]], mapping: dict[str, str]) -> list[list[str]]:
    """Rewrite concept lists through `mapping`, dropping repeats inside a list."""
    out = []
    for concepts in lists:
        merged = [mapping.get(normalize_concept(c), c) for c in concepts]
        out.append(list(dict.fromkeys(merged)))
    return out
