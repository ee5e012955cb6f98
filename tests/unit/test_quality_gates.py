"""Quality gates without Ray: normalisation, signatures, decontamination, dedup decisions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from datasketch import MinHash

from promptcot_ray import records as R
from promptcot_ray.config import load_config
from promptcot_ray.quality.config import QualityConfig
from promptcot_ray.quality.decontam import SEEDS_SOURCE, Reference, build_index, first_hits
from promptcot_ray.quality.dedup import (
    near_pair_ids,
    partition_pairs,
    resolve_duplicates,
)
from promptcot_ray.quality.features import ComputeFeatures, explode_keys, signatures_of
from promptcot_ray.quality.job import contamination_decisions
from promptcot_ray.quality.minhash import MinHasher, lsh_bands
from promptcot_ray.quality.normalize import (
    WordHasher,
    batch_word_hashes,
    normalize_text,
    text_hash,
    window_hashes,
    words,
)

REPO = Path(__file__).resolve().parents[2]

BASE = (
    "A bag contains {n} red marbles and {m} blue marbles. Two marbles are drawn at random "
    "without replacement and their colours are recorded. Given that at least one of the two "
    "marbles is red, find the probability that both marbles are red, and express the answer "
    "as a fraction p over q in lowest terms where p and q are coprime positive integers. "
    "Report the value of p plus q as a single integer."
)
BENCH = (
    "Janet's ducks lay 16 eggs per day. She eats three for breakfast every morning and bakes "
    "muffins for her friends every day with four. She sells the remainder at the farmers' "
    "market daily for $2 per fresh duck egg."
)
SEED = (
    "Let triangle ABC have sides 13, 14 and 15. The incircle touches BC at D and the "
    "excircle opposite A touches BC at E. Find the length of DE as a reduced fraction."
)


def _index() -> object:
    refs = [Reference("benchmark:gsm8k", "gsm8k-0", BENCH), Reference(SEEDS_SOURCE, "s1", SEED)]
    return build_index(refs, 13)


def _rows() -> pa.Table:
    problems = {
        "a": BASE.format(n=5, m=7),
        "b": BASE.format(n=5, m=7).upper().replace(" ", "  "),  # exact (normalised) copy of a
        "c": BASE.format(n=5, m=7).replace("single integer", "whole integer"),  # near copy
        "d": BASE.format(n=11, m=3) + " " + BENCH.lower(),  # embeds a benchmark item
        "e": "Prove that " + SEED.replace("reduced", "simplified"),  # copies a seed
        "f": "Compute the number of ordered pairs of primes whose sum is one hundred.",
        "g": BASE.format(n=5, m=7).replace("single integer", "whole integer") + " " + SEED,
    }
    return pa.table({R.ID: list(problems), "problem": list(problems.values())})


def local_removals(table: pa.Table, batch: int, cfg: QualityConfig = QualityConfig()) -> dict:
    """The job's plan without Ray: features per batch, group by key, resolve on the driver."""
    compute = ComputeFeatures(cfg.num_perm, cfg.shingle, cfg.minhash_threshold, _index())
    feats = pa.concat_tables([compute(table.slice(i, batch)) for i in range(0, len(table), batch)])
    buckets = explode_keys(feats, partitions=3)
    pairs = [
        p
        for part in set(buckets["part"].to_pylist())
        for p in partition_pairs(buckets.filter(pc.equal(buckets["part"], part))).to_pylist()
    ]
    pairs = [(p["a"], p["b"], p["same_text"]) for p in pairs]
    sigs = signatures_of(feats, pa.array(sorted(near_pair_ids(pairs)), pa.string()))
    signatures = {
        i: np.frombuffer(s, np.uint32)
        for i, s in zip(sigs[R.ID].to_pylist(), sigs["signature"].to_pylist(), strict=True)
    }
    dups = resolve_duplicates(pairs, signatures, cfg.minhash_threshold)
    return {**dups, **contamination_decisions(feats.filter(feats["hit_source"].is_valid()))}


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        ("Find  x+1 ", "find x+1", True),
        ("\uff26\uff49\uff4e\uff44 x", "find x", True),  # NFKC folds full-width letters
        ("find x+1", "find x-1", False),  # operators matter for exact duplicates
    ],
)
def test_text_hash_normalises_case_width_and_spaces(a, b, same):
    assert (text_hash(a) == text_hash(b)) is same
    assert (normalize_text(a) == normalize_text(b)) is same


def test_words_keep_letters_and_digits_only():
    assert words("Let $x^2 + 3x = 10$; find x_1.") == [
        "let",
        "x",
        "2",
        "3x",
        "10",
        "find",
        "x",
        "1",
    ]


def test_window_hashes_short_text_gets_one_hash_and_empty_none():
    h = WordHasher()
    assert len(window_hashes(h(["a", "b"]), 13)) == 1
    assert len(window_hashes(h([]), 13)) == 0
    assert len(window_hashes(h(list("abcdefghijklmno")), 13)) == 3


def test_signature_equals_datasketch_minhash_and_bands_follow_datasketch():
    hasher = MinHasher(128, 5)
    wh = WordHasher()(words(BASE))
    shingles = (window_hashes(wh, 5) >> np.uint64(32)).tolist()
    reference = MinHash(num_perm=128, seed=1, hashfunc=lambda v: v, scheme="affine32")
    reference.update_batch(shingles)
    assert np.array_equal(hasher.signature(wh), reference.hashvalues)
    assert lsh_bands(0.8, 128) == (14, 9)  # recall-weighted, see lsh_bands


def test_batch_signatures_equal_row_by_row_signatures():
    hasher = MinHasher(128, 5)
    texts = [BASE, "", "two words", BENCH, SEED, BASE.format(n=1, m=2)]
    word_lists = [words(t) for t in texts]
    sigs, has = hasher.batch_signatures(*batch_word_hashes(word_lists))
    single = [hasher.signature(WordHasher()(w)) for w in word_lists]
    assert has.tolist() == [s is not None for s in single]
    assert all(
        np.array_equal(a, b)
        for a, b in zip(sigs, [s for s in single if s is not None], strict=True)
    )


def test_first_hits_reports_benchmark_before_seed_and_the_shared_ngram():
    index = _index()
    hits = first_hits(index, [words(SEED + " " + BENCH), words(SEED), words("nothing here")])
    assert hits[0].source == "benchmark:gsm8k" and hits[0].item_id == "gsm8k-0"
    assert hits[0].ngram == " ".join(words(BENCH)[:13])
    assert hits[1].source == SEEDS_SOURCE and hits[1].item_id == "s1"
    assert hits[2] is None


def test_every_reason_on_hand_built_rows():
    got = local_removals(_rows(), batch=3)
    assert set(got) == {"b", "c", "d", "e", "g"}
    assert (got["b"].reason, got["b"].matched_id) == (R.REASON_EXACT_DUPLICATE, "a")
    assert (got["c"].reason, got["c"].matched_id) == (R.REASON_NEAR_DUPLICATE, "a")
    assert 0.8 <= got["c"].jaccard < 1.0
    assert (got["d"].reason, got["d"].matched_id) == (R.REASON_CONTAMINATED, "gsm8k-0")
    assert got["d"].matched_source == "benchmark:gsm8k" and len(got["d"].ngram.split()) == 13
    assert (got["e"].reason, got["e"].matched_id, got["e"].matched_source) == (
        R.REASON_SEED_COPY,
        "s1",
        SEEDS_SOURCE,
    )
    assert got["g"].reason == R.REASON_SEED_COPY  # seed copy wins over near-duplicate


def test_result_is_the_same_whatever_the_batch_split_and_row_order():
    table = _rows()
    expected = local_removals(table, batch=len(table))
    shuffled = table.take(pa.array([6, 3, 0, 5, 1, 4, 2]))
    for batch in (1, 2, 5):
        assert local_removals(table, batch) == expected
        assert local_removals(shuffled, batch) == expected


def test_resolve_keeps_smallest_id_across_a_chain():
    sig = np.arange(128, dtype=np.uint32)
    pairs = [("b", "c", False), ("a", "b", False), ("c", "d", True)]
    got = resolve_duplicates(pairs, {"a": sig, "b": sig.copy(), "c": sig.copy()}, 0.8)
    assert {k: (v.reason, v.matched_id) for k, v in got.items()} == {
        "b": (R.REASON_NEAR_DUPLICATE, "a"),
        "c": (R.REASON_NEAR_DUPLICATE, "a"),
        "d": (R.REASON_NEAR_DUPLICATE, "a"),
    }


def test_dissimilar_candidates_are_not_merged():
    a = np.arange(128, dtype=np.uint32)
    assert resolve_duplicates([("a", "b", False)], {"a": a, "b": a + 1}, 0.8) == {}


def test_config_defaults_and_local_file():
    cfg = QualityConfig()
    assert [b.name for b in cfg.benchmarks] == ["math500", "aime2024", "aime2025", "gsm8k"]
    assert (cfg.ngram, cfg.minhash_threshold, cfg.num_perm, cfg.shingle) == (13, 0.8, 128, 5)
    local = load_config(QualityConfig, REPO / "jobs/configs/quality-local.yaml")
    assert all(b.path for b in local.benchmarks)
    with pytest.raises(ValueError, match="exactly one"):
        load_config(QualityConfig, None, ["benchmarks=[{name: x}]"])
