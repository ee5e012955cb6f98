"""Best-of-n pieces: span boundaries, logprob sums, candidate expansion, best selection."""

from __future__ import annotations

import pyarrow as pa
import pytest

from promptcot_ray import records as R
from promptcot_ray.prompts import generator as generator_prompt
from promptcot_ray.rationales.job import expand_samples, keep_best
from promptcot_ray.rationales.scoring import scoring_tokens, span_sums


def test_span_sums_read_each_tokens_own_logprob_with_int_or_str_keys():
    ids = [5, 6, 7, 8, 9]
    logprobs = [
        None,
        {6: {"logprob": -1.0}},
        {"7": {"logprob": -2.0}, "1": {"logprob": -0.1}},
        {8: {"logprob": -3.0}},
        {9: {"logprob": -4.0}},
    ]
    assert span_sums(logprobs, ids, 1, 3) == (-3.0, -7.0)
    assert span_sums(logprobs, ids, 0, 0) == (0.0, -10.0)  # None entries are skipped


def test_scoring_tokens_spans_cover_rationale_then_problem(tiny_model_path):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_path)
    ids, start, cut = scoring_tokens(tok, ["Parity"], "AIME", "Use parity.", "Find n.")
    assert 0 < start < cut < len(ids)
    rationale_text = tok.decode(ids[start:cut])
    problem_text = tok.decode(ids[cut:])
    assert "Use parity." in rationale_text and generator_prompt.RATIONALE_BEGIN in rationale_text
    assert "Find n." in problem_text and "Use parity." not in problem_text


def test_expand_samples_makes_n_keyed_candidates():
    inputs = pa.table({"seed_id": ["a", "b"], "problem": ["p", "q"]})
    out = expand_samples(inputs, 3)
    assert out.num_rows == 6
    assert sorted(out["candidate_key"].to_pylist()) == sorted(
        f"{s}:{i}" for s in "ab" for i in range(3)
    )


def _cand(rid, seed, score, status=R.STATUS_OK):
    return {R.ID: rid, "seed_id": seed, "score": score, R.STATUS: status, R.REASON: None}


def test_keep_best_keeps_one_per_seed_with_deterministic_ties():
    rows = [
        _cand("r1", "a", -5.0),
        _cand("r2", "a", -2.0),
        _cand("r3", "a", -9.0),
        _cand("r4", "b", -1.0),
        _cand("r5", "b", -1.0),
        _cand("r6", "c", None, R.STATUS_FILTERED),
    ]
    keep_best(rows)
    kept = [r[R.ID] for r in rows if r[R.STATUS] == R.STATUS_OK]
    assert kept == ["r2", "r4"]  # tie on b: smaller id wins
    assert {r[R.REASON] for r in rows if r[R.ID] in ("r1", "r3", "r5")} == {
        R.REASON_RATIONALE_NOT_BEST
    }


def test_best_of_n_needs_a_scorer():
    from promptcot_ray.rationales.config import RationalesConfig

    with pytest.raises(ValueError, match="scorer"):
        RationalesConfig(writer={"model": "m"}, best_of_n=2)
