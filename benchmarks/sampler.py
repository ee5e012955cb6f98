"""Benchmark the combination sampler against a straightforward reference implementation.

Builds a synthetic pool (topic-clustered concept lists and embeddings), times the reference
(a full similarity search and softmax per step, one combination at a time) and the project
sampler on the same number of combinations, then the project sampler at scale, and checks
that both draw from the same distribution. Run: `python benchmarks/sampler.py [--quick]`.
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Sequence

import numpy as np
from scipy import stats

from promptcot_ray.concepts.pool import ConceptPool, build_pool
from promptcot_ray.concepts.sampler import CombinationSampler
from promptcot_ray.records import LEVELS


def reference_sample_combination(
    pool: ConceptPool,
    rng: np.random.Generator,
    size: int = 5,
    temperature: float = 0.2,
    levels: Sequence[str] = LEVELS,
) -> tuple[tuple[int, ...], str]:
    """One combination by the method's definition, written plainly (the benchmark baseline).

    Every step computes the similarity of every concept to the normalised mean embedding
    of the chosen ones, adds its co-occurrence sum, and draws from a stable softmax.
    """
    emb = pool.embeddings
    chosen = [int(rng.choice(pool.size, p=pool.frequency / pool.frequency.sum()))]
    while len(chosen) < size:
        mean = emb[chosen].astype(np.float64).mean(axis=0)
        norm = np.linalg.norm(mean)
        similarity = emb @ (mean / norm if norm > 0 else mean).astype(np.float32)
        counts = np.asarray(pool.cooccurrence[chosen].sum(axis=0), dtype=np.float64).ravel()
        scores = counts + similarity
        scores[chosen] = -np.inf
        weights = np.exp((scores - scores.max()) / temperature)
        chosen.append(int(rng.choice(pool.size, p=weights / weights.sum())))
    return tuple(chosen), levels[int(rng.integers(len(levels)))]


def synthetic_pool(
    n_concepts: int, dim: int, n_lists: int, n_topics: int, seed: int
) -> tuple[ConceptPool, np.ndarray]:
    """A pool whose lists mostly stay within a topic; returns it and each concept's topic.

    Embeddings are a topic centroid plus noise (same-topic cosine ~0.3). Every concept is in
    at least one list; popular concepts (Zipf within a topic) recur; 20% of the extra
    slots go to a concept of another topic.
    """
    rng = np.random.default_rng(seed)
    per_topic = n_concepts // n_topics
    topic_of = np.repeat(np.arange(n_topics), per_topic)
    centroids = rng.standard_normal((n_topics, dim))
    centroids /= np.linalg.norm(centroids, axis=1, keepdims=True)
    emb = centroids[topic_of] + 1.5 * rng.standard_normal((len(topic_of), dim)) / np.sqrt(dim)
    zipf = 1.0 / np.arange(1, per_topic + 1) ** 0.8
    zipf /= zipf.sum()
    lists: list[list[int]] = []
    for topic in range(n_topics):
        members = topic * per_topic + rng.permutation(per_topic)
        n_here = n_lists // n_topics
        sizes = rng.integers(3, 7, n_here)
        while sizes.sum() < per_topic:
            sizes = rng.integers(3, 7, n_here)
        slots: list[list[int]] = [[] for _ in range(n_here)]
        for i, concept in enumerate(members):  # cover every concept once, round-robin
            open_lists = [k for k in range(n_here) if len(slots[k]) < sizes[k]]
            slots[open_lists[i % len(open_lists)]].append(int(concept))
        for k in range(n_here):
            while len(slots[k]) < sizes[k]:
                if rng.random() < 0.8:
                    extra = topic * per_topic + rng.choice(per_topic, p=zipf)
                else:
                    extra = rng.integers(len(topic_of))
                if int(extra) not in slots[k]:
                    slots[k].append(int(extra))
        lists.extend(slots)
    names = [[f"concept {c:06d}" for c in lst] for lst in lists]
    pool = build_pool(names, lambda texts: emb[[int(t.split()[1]) for t in texts]])
    order = np.array([int(t.split()[1]) for t in pool.concepts])
    return pool, topic_of[order]


def _pair_stats(pool: ConceptPool, topic: np.ndarray, ids: np.ndarray) -> dict[str, np.ndarray]:
    """Per-combination means over its concept pairs: co-occurrence, cosine, same topic."""
    i, j = np.triu_indices(ids.shape[1], k=1)
    out: dict[str, list[np.ndarray]] = {
        "pair co-occurrence": [],
        "pair cosine": [],
        "pair same-topic fraction": [],
    }
    for lo in range(0, len(ids), 10_000):  # chunks keep the (combos, pairs, dim) gather small
        a, b = ids[lo : lo + 10_000, i], ids[lo : lo + 10_000, j]
        cooc = np.asarray(pool.cooccurrence[a.ravel(), b.ravel()]).reshape(a.shape)
        cos = np.einsum("pkd,pkd->pk", pool.embeddings[a], pool.embeddings[b])
        out["pair co-occurrence"].append(cooc.mean(axis=1))
        out["pair cosine"].append(cos.mean(axis=1))
        out["pair same-topic fraction"].append((topic[a] == topic[b]).mean(axis=1))
    return {name: np.concatenate(parts) for name, parts in out.items()}


def check_same_distribution(
    pool: ConceptPool, topic: np.ndarray, ref_ids: np.ndarray, ids: np.ndarray
) -> list[tuple[str, bool, str]]:
    """(name, passed, detail) for each distribution check between reference and project."""
    checks = []
    n_topics = int(topic.max()) + 1
    expected = np.bincount(topic, weights=pool.frequency, minlength=n_topics)
    expected /= expected.sum()
    observed = {}
    for name, sample in (("reference", ref_ids), ("project", ids)):
        counts = np.bincount(topic[sample[:, 0]], minlength=n_topics)
        observed[name] = counts / len(sample)
        p_value = stats.chisquare(counts, expected * len(sample)).pvalue
        checks.append(
            (
                f"first concept ~ frequency ({name}, chi-square over topics)",
                p_value >= 1e-3,
                f"p = {p_value:.3g} (pass: >= 0.001)",
            )
        )
    # Expected TVD of two samples of one distribution, from the normal approximation.
    noise = np.sqrt(expected * (1 - expected) * (1 / len(ref_ids) + 1 / len(ids)))
    tolerance = 1.5 * 0.5 * np.sqrt(2 / np.pi) * noise.sum()
    tvd = 0.5 * np.abs(observed["reference"] - observed["project"]).sum()
    checks.append(
        (
            "first-concept TVD, project vs reference (topic bins)",
            tvd <= tolerance,
            f"{tvd:.4f} (pass: <= {tolerance:.4f}, 1.5x the sampling-noise mean)",
        )
    )
    ref_stats, proj_stats = _pair_stats(pool, topic, ref_ids), _pair_stats(pool, topic, ids)
    for name in ref_stats:
        r, p = ref_stats[name], proj_stats[name]
        se = np.sqrt(r.var(ddof=1) / len(r) + p.var(ddof=1) / len(p))
        z = (p.mean() - r.mean()) / se
        checks.append(
            (
                f"{name}: project vs reference",
                abs(z) <= 4.0,
                f"{p.mean():.4f} vs {r.mean():.4f}, z = {z:+.2f} (pass: |z| <= 4)",
            )
        )
    return checks


def _threads() -> str:
    env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS") if k in os.environ}
    try:
        from threadpoolctl import threadpool_info

        blas = ", ".join(f"{i['internal_api']}={i['num_threads']}" for i in threadpool_info())
    except ImportError:
        blas = "threadpoolctl not installed"
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"cpu_count={os.cpu_count()}, BLAS threads: {blas}, env: {env or 'unset'}, load: {load}"


def _timed(fn, *args):
    start = time.perf_counter()
    result = fn(*args)
    return result, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concepts", type=int, default=20_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--lists", type=int, default=6_000)
    parser.add_argument("--topics", type=int, default=200)
    parser.add_argument("--compare", type=int, default=2_000, help="combinations each, timed")
    parser.add_argument("--scale", type=int, default=400_000, help="combinations at scale")
    parser.add_argument("--size", type=int, default=5)
    parser.add_argument("--temperature", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="5k concepts, 500 / 40k combos")
    args = parser.parse_args()
    if args.quick:
        quick = {"concepts": 5_000, "lists": 1_500, "topics": 50, "compare": 500, "scale": 40_000}
        vars(args).update(quick)
    print(f"threads: {_threads()}")
    (pool, topic), t = _timed(synthetic_pool, args.concepts, args.dim, args.lists, args.topics, 0)
    print(
        f"pool: {pool.size} concepts, dim {pool.dim}, {args.lists} lists, "
        f"{pool.cooccurrence.nnz} co-occurrence entries; build_pool {t:.1f} s"
    )

    rng = np.random.default_rng(args.seed)

    def run_reference() -> list[tuple[tuple[int, ...], str]]:
        return [
            reference_sample_combination(pool, rng, args.size, args.temperature)
            for _ in range(args.compare)
        ]

    ref, t_ref = _timed(run_reference)
    ref_ids = np.array([c for c, _ in ref])
    print(
        f"(a) reference: {args.compare} combinations in {t_ref:.2f} s "
        f"({args.compare / t_ref:.0f}/s)"
    )

    sampler, t_init = _timed(CombinationSampler, pool, args.size, args.temperature)
    _, t_cold = _timed(sampler.sample_arrays, args.seed, 0, args.compare)
    _, t_warm = _timed(sampler.sample_arrays, args.seed + 1, 0, args.compare)
    print(
        f"(b) project: {args.compare} combinations in {t_init + t_cold:.2f} s cold "
        f"(incl. {t_init:.2f} s building the sampler's similarity bounds) and {t_warm:.3f} s "
        "warm (sampler reused)"
    )
    print(
        f"    speedup vs reference: {t_ref / (t_init + t_cold):.1f}x cold, "
        f"{t_ref / t_warm:.0f}x warm"
    )

    (ids, _), t_scale = _timed(sampler.sample_arrays, args.seed + 2, 0, args.scale)
    print(
        f"(c) project at scale: {args.scale} combinations in {t_scale:.1f} s warm "
        f"({args.scale / t_scale:,.0f}/s); {t_init + t_scale:.1f} s with building the sampler"
    )
    print(
        f"    per-combination speedup vs reference: "
        f"{(t_ref / args.compare) / (t_scale / args.scale):.0f}x"
    )

    for name, passed, detail in check_same_distribution(pool, topic, ref_ids, ids):
        print(f"{'PASS' if passed else 'FAIL'}  {name}: {detail}")


if __name__ == "__main__":
    main()
