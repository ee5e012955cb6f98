"""Combination sampler: determinism across shards, validity, exactness, and the reference."""

from __future__ import annotations

import importlib.util
import itertools
import warnings
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

import promptcot_ray.concepts.sampler as sampler_module
from promptcot_ray.concepts.pool import ConceptPool, make_pool
from promptcot_ray.concepts.sampler import (
    Combination,
    CombinationSampler,
    find_duplicate_combinations,
    sample_combination_arrays,
    sample_combinations,
)
from promptcot_ray.records import LEVELS

P_MIN = 1e-3  # chi-square tests use fixed seeds, so they pass or fail deterministically


def _chi_square_p(observed: np.ndarray, expected: np.ndarray) -> float:
    """Chi-square p-value, with the bins expecting fewer than 5 counts merged into one."""
    assert observed[expected == 0].sum() == 0  # impossible outcomes never happen
    observed, expected = observed[expected > 0], expected[expected > 0]
    head = expected >= 5
    if (~head).any():
        observed = np.append(observed[head], observed[~head].sum())
        expected = np.append(expected[head], expected[~head].sum())
    return stats.chisquare(observed, expected).pvalue


def _load_reference():
    path = Path(__file__).resolve().parents[2] / "benchmarks" / "sampler.py"
    spec = importlib.util.spec_from_file_location("benchmark_sampler", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.reference_sample_combination


def _random_pool(n: int, dim: int, seed: int, density: float = 0.05, max_count: int = 3):
    """Clustered unit embeddings, sparse symmetric counts, frequencies 1..20."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((max(n // 20, 1), dim))
    emb = centres[rng.integers(len(centres), size=n)] + rng.standard_normal((n, dim))
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    counts = rng.integers(1, max_count + 1, (n, n)) * (rng.random((n, n)) < density)
    counts = np.triu(counts, 1)
    return make_pool([f"c{i}" for i in range(n)], rng.integers(1, 21, n), emb, counts + counts.T)


@pytest.fixture(scope="module")
def small_pool() -> ConceptPool:  # at most _DENSE_MAX_CONCEPTS: the dense softmax path
    return _random_pool(40, 16, seed=1, density=0.15)


@pytest.fixture(scope="module")
def large_pool() -> ConceptPool:  # the envelope / rejection path, 19 bound blocks
    return _random_pool(600, 32, seed=2, density=0.02)


@pytest.fixture(params=["small_pool", "large_pool"])
def pool(request) -> ConceptPool:
    return request.getfixturevalue(request.param)


def test_same_seed_same_combinations_and_valid_output(pool: ConceptPool) -> None:
    ids, levels = sample_combination_arrays(pool, 7, 0, 1000)
    again, levels_again = sample_combination_arrays(pool, 7, 0, 1000)
    np.testing.assert_array_equal(ids, again)
    np.testing.assert_array_equal(levels, levels_again)
    assert ids.shape == (1000, 5) and ids.dtype == np.int32 and levels.dtype == np.int8
    assert ids.min() >= 0 and ids.max() < pool.size
    assert all(len(set(row)) == 5 for row in ids.tolist())  # no concept twice
    assert levels.min() >= 0 and levels.max() < len(LEVELS)
    other, _ = sample_combination_arrays(pool, 8, 0, 1000)
    assert (other != ids).any(axis=1).mean() > 0.5


def test_results_do_not_depend_on_shards_or_order(pool: ConceptPool) -> None:
    """Shards computed out of order, by a fresh worker, concatenate to the single call."""
    whole, whole_levels = sample_combination_arrays(pool, 3, 0, 2300)  # crosses a block edge
    shards = list(itertools.pairwise([0, 300, 2047, 2049, 2300]))
    sampler_module.clear_sampler_cache()
    parts = {lo: sample_combination_arrays(pool, 3, lo, hi - lo) for lo, hi in shards[::-1]}
    np.testing.assert_array_equal(np.concatenate([parts[lo][0] for lo, _ in shards]), whole)
    levels = np.concatenate([parts[lo][1] for lo, _ in shards])
    np.testing.assert_array_equal(levels, whole_levels)


def test_list_form_matches_arrays(small_pool: ConceptPool) -> None:
    ids, levels = sample_combination_arrays(small_pool, 5, 10, 20, size=3, levels=LEVELS[:3])
    combos = sample_combinations(small_pool, 5, 10, 20, size=3, levels=LEVELS[:3])
    assert combos[0] == Combination(10, tuple(ids[0].tolist()), LEVELS[:3][levels[0]])
    assert [c.index for c in combos] == list(range(10, 30))
    assert [c.concept_ids for c in combos] == [tuple(r) for r in ids.tolist()]
    assert {c.level for c in combos} <= set(LEVELS[:3])
    assert sample_combinations(small_pool, 5, 0, 0) == []


def test_find_duplicate_combinations() -> None:
    ids = np.array([[1, 2, 3], [3, 2, 1], [1, 2, 4], [1, 2, 3], [4, 2, 1], [5, 6, 7]])
    assert find_duplicate_combinations(ids).tolist() == [False, True, False, True, True, False]
    assert find_duplicate_combinations(np.zeros((0, 5), np.int32)).tolist() == []
    with pytest.raises(ValueError, match="2-D"):
        find_duplicate_combinations(np.array([1, 2, 3]))


def test_invalid_arguments_raise(small_pool: ConceptPool) -> None:
    with pytest.raises(ValueError, match="size=41"):
        sample_combination_arrays(small_pool, 0, 0, 1, size=41)
    for bad in (0.0, -0.2, float("nan")):
        with pytest.raises(ValueError, match="temperature"):
            sample_combination_arrays(small_pool, 0, 0, 1, temperature=bad)
    with pytest.raises(ValueError, match="start"):
        sample_combination_arrays(small_pool, 0, -1, 1)
    empty = make_pool([], np.zeros(0, np.int64), np.zeros((0, 4), np.float32), np.zeros((0, 0)))
    with pytest.raises(ValueError, match="empty concept pool"):
        sample_combination_arrays(empty, 0, 0, 1)
    zero = make_pool(
        small_pool.concepts,
        np.zeros(small_pool.size, np.int64),
        small_pool.embeddings,
        small_pool.cooccurrence,
    )
    with pytest.raises(ValueError, match="frequency 0"):
        sample_combination_arrays(zero, 0, 0, 1)


def test_huge_counts_neither_overflow_nor_lose_the_pair(pool: ConceptPool) -> None:
    counts = pool.cooccurrence.toarray()
    counts[0, 1] = counts[1, 0] = 10**9
    frequency = pool.frequency.copy()
    frequency[0] = frequency.sum()  # concept 0 first in about half the combinations
    huge = make_pool(pool.concepts, frequency, pool.embeddings, counts)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any overflow / invalid-value warning fails the test
        ids, _ = sample_combination_arrays(huge, 0, 0, 2000)
    with_0 = (ids[:, :-1] == 0).any(axis=1)  # 0 before the last position: 1 must follow
    assert with_0.sum() > 800
    assert (ids[with_0] == 1).any(axis=1).all()
    assert all(len(set(row)) == 5 for row in ids.tolist())


def test_first_concept_follows_frequency_and_levels_are_uniform(large_pool: ConceptPool) -> None:
    frequency = (2.0 ** -np.arange(large_pool.size) * 1e6).astype(np.int64) + 1  # skewed
    skewed = make_pool(
        large_pool.concepts, frequency, large_pool.embeddings, large_pool.cooccurrence
    )
    ids, levels = sample_combination_arrays(skewed, 11, 0, 20_000, size=2)
    expected = frequency / frequency.sum() * len(ids)
    observed = np.bincount(ids[:, 0], minlength=skewed.size)
    assert _chi_square_p(observed, expected) > P_MIN
    level_counts = np.bincount(levels, minlength=len(LEVELS))
    assert stats.chisquare(level_counts).pvalue > P_MIN
    assert np.abs(level_counts / len(levels) - 1 / len(LEVELS)).max() < 0.015


def test_strong_cooccurrence_pulls_concepts_together(small_pool: ConceptPool) -> None:
    counts = np.zeros((small_pool.size, small_pool.size), np.int64)
    counts[2, 3] = counts[3, 2] = 6  # score +6: at least e^20 times likelier than any other
    pool = make_pool(small_pool.concepts, small_pool.frequency, small_pool.embeddings, counts)
    ids, _ = sample_combination_arrays(pool, 1, 0, 5000, size=2)
    pairs = {frozenset(r) for r in ids.tolist() if r[0] in (2, 3)}
    assert pairs == {frozenset((2, 3))}


def _exact_ordered_probabilities(pool: ConceptPool, size: int, temperature: float) -> dict:
    """P(ordered combination) straight from the method's definition, by enumeration."""
    emb = pool.embeddings.astype(np.float64)
    counts = pool.cooccurrence.toarray().astype(np.float64)
    first = pool.frequency / pool.frequency.sum()
    out = {}
    for perm in itertools.permutations(range(pool.size), size):
        p = first[perm[0]]
        for k in range(1, size):
            chosen = list(perm[:k])
            mean = emb[chosen].mean(axis=0)
            scores = counts[chosen].sum(axis=0) + emb @ (mean / np.linalg.norm(mean))
            scores[chosen] = -np.inf
            weights = np.exp((scores - scores.max()) / temperature)
            p *= weights[perm[k]] / weights.sum()
        out[perm] = p
    return out


@pytest.mark.parametrize(
    ("path", "temperature"), [("dense", 0.2), ("envelope", 0.2), ("envelope", 0.7), ("dense", 0.01)]
)
def test_sampler_is_exact_on_a_toy_pool(monkeypatch, path: str, temperature: float) -> None:
    """Ordered 3-combinations of 8 concepts: chi-square against the enumerated definition."""
    if path == "envelope":
        monkeypatch.setattr(sampler_module, "_DENSE_MAX_CONCEPTS", 0)
    pool = _random_pool(8, 16, seed=3, density=0.4, max_count=2)
    exact = _exact_ordered_probabilities(pool, 3, temperature)
    keys = list(exact)
    ids, _ = CombinationSampler(pool, 3, temperature).sample_arrays(5, 0, 20_000)
    position = {k: i for i, k in enumerate(keys)}
    observed = np.bincount([position[tuple(r)] for r in ids.tolist()], minlength=len(keys))
    expected = np.array([exact[k] for k in keys]) * len(ids)
    assert _chi_square_p(observed, expected) > P_MIN


@pytest.mark.parametrize(("with_counts", "temperature"), [(False, 0.2), (True, 1.0)])
def test_envelope_step_is_exact_across_many_blocks(
    large_pool: ConceptPool, with_counts: bool, temperature: float
) -> None:
    """One step from a fixed 2-concept prefix, 10k draws over 600 concepts, vs the softmax.

    Without counts every draw comes from the block bounds; with counts (at T = 1, so they
    do not swamp similarity) from both the support entries and the blocks.
    """
    counts = large_pool.cooccurrence if with_counts else np.zeros((large_pool.size,) * 2)
    pool = make_pool(large_pool.concepts, large_pool.frequency, large_pool.embeddings, counts)
    sampler = CombinationSampler(pool, temperature=temperature)
    assert not sampler._dense
    prefix = np.array([[5, 77]] * sampler_module._COMBO_BLOCK)
    emb = pool.embeddings.astype(np.float64)
    mean = emb[[5, 77]].sum(axis=0)
    scores = pool.cooccurrence[[5, 77]].toarray().sum(axis=0) + emb @ (mean / np.linalg.norm(mean))
    scores[[5, 77]] = -np.inf
    probs = np.exp((scores - scores.max()) / temperature)
    probs /= probs.sum()
    key = sampler_module._seed_key(0)
    draws = []
    for block in range(5):
        index = np.arange(block * len(prefix), (block + 1) * len(prefix), dtype=np.uint64)
        upper = sampler._block_max[prefix].sum(axis=1)
        total = emb[prefix].sum(axis=1)
        draws.append(sampler._next(key, index, 3, prefix, upper, total))
    observed = np.bincount(np.concatenate(draws), minlength=pool.size)
    expected = probs * observed.sum()
    assert observed[[5, 77]].sum() == 0
    assert (expected >= 5).sum() > 60  # many blocks take part
    assert _chi_square_p(observed, expected) > P_MIN


def test_agrees_with_reference_implementation(small_pool: ConceptPool) -> None:
    """Stated tolerances: first-concept TVD <= 0.12; pair frequencies within 0.065; |z| <= 4.

    Combinations of 3; with 1,000 reference draws these are about 1.5x the expected TVD and
    4 standard errors.
    """
    reference = _load_reference()
    rng = np.random.default_rng(0)
    ref = np.array([reference(small_pool, rng, 3, 0.2)[0] for _ in range(1000)])
    ids, _ = sample_combination_arrays(small_pool, 0, 0, 20_000, size=3)
    n = small_pool.size

    def first_freq(sample: np.ndarray) -> np.ndarray:
        return np.bincount(sample[:, 0], minlength=n) / len(sample)

    assert 0.5 * np.abs(first_freq(ref) - first_freq(ids)).sum() <= 0.12

    def pair_freq(sample: np.ndarray) -> np.ndarray:
        member = np.zeros((len(sample), n))
        member[np.arange(len(sample))[:, None], sample] = 1
        return member.T @ member / len(sample)  # share of combinations holding both

    assert np.abs(pair_freq(ref) - pair_freq(ids)).max() <= 0.065
    counts = small_pool.cooccurrence.toarray()
    i, j = np.triu_indices(3, k=1)

    def pair_counts(sample: np.ndarray) -> np.ndarray:
        return counts[sample[:, i], sample[:, j]].mean(axis=1)

    r, p = pair_counts(ref), pair_counts(ids)
    z = (p.mean() - r.mean()) / np.sqrt(r.var() / len(r) + p.var() / len(p))
    assert abs(z) <= 4
