"""Pseudo-labels: strict majority, confidence over ALL samples, a minimum of valid samples,
ties rejected with a reason; SFT selection random (seeded) by default."""

from __future__ import annotations

import pytest

from promptcot_ray import records as R
from promptcot_ray.distill import labels as L
from promptcot_ray.distill.config import DistillConfig
from promptcot_ray.distill.labeling import LabelProblem, choose
from promptcot_ray.solve.grading import GRADE_OK, Grade
from promptcot_ray.solve.solutions import REASON_NO_BOXED, REASON_TRUNCATED, check_solution
from promptcot_ray.table_schemas import solution_schema

TEACHER = {"model": "teacher", "device": "cpu"}


def _same(items):
    """String equality as the grader: enough for counting votes."""
    return [Grade(a == b, GRADE_OK) for a, b, _ in items]


@pytest.mark.parametrize(
    ("answers", "samples", "min_valid", "min_conf", "reason", "confidence"),
    [
        (["7", "7", "5"], 3, 2, 0.5, None, 2 / 3),
        (["7", "7"], 4, 2, 0.5, None, 0.5),  # two of four samples cut off: still half
        (["7", "7"], 4, 2, 0.6, L.REASON_LOW_CONFIDENCE, 0.5),  # the cut-off ones count
        (["7", "5", "7", "5"], 4, 2, 0.0, L.REASON_LABEL_TIE, 0.5),
        (["1", "1", "2", "3"], 4, 2, 0.0, L.REASON_NO_MAJORITY, 0.5),  # plurality, no majority
        (["7"], 4, 2, 0.0, L.REASON_TOO_FEW_VALID, 0.25),
        ([], 4, 1, 0.0, L.REASON_NO_VALID_SOLUTION, 0.0),
    ],
)
def test_label_rule(answers, samples, min_valid, min_conf, reason, confidence):
    result = L.majority_label(answers, _same, samples)
    assert result.confidence == pytest.approx(confidence)
    assert L.rejection(result, min_valid, min_conf) == reason


def test_a_tie_is_reported_whatever_the_order():
    a = L.majority_label(["7", "5", "7", "5"], _same)
    b = L.majority_label(["5", "7", "5", "7"], _same)
    assert a.tied and b.tied and a.label == b.label


def _solution(index: int, text: str, finish: str) -> dict:
    checked = check_solution(text, finish)
    return {
        R.ID: f"sol-{index}",
        R.PARENT_IDS: ["p1"],
        R.STAGE: "distill_solve",
        R.MODEL: "teacher",
        R.PROMPT_VERSION: "solve-v1",
        R.SEED: index,
        R.SAMPLE_INDEX: index,
        R.CREATED_AT: "2026-01-01T00:00:00Z",
        "problem_id": "p1",
        "problem": "What is 3 + 4?",
        "text": text,
        "answer": checked.answer,
        "final_answer": checked.answer,
        "finish_reason": finish,
        "think_opened_by_prompt": checked.think_opened_by_prompt,
        "tokens_in": 10,
        "tokens_out": 50 + index,
        R.STATUS: R.STATUS_OK if checked.reason is None else R.STATUS_FILTERED,
        R.REASON: checked.reason,
        R.ERROR: None,
    }


def _group(texts: list[tuple[str, str]]):
    import pyarrow as pa

    rows = [_solution(i, t, f) for i, (t, f) in enumerate(texts)]
    schema = solution_schema()
    return pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in rows], schema)


def test_label_problem_counts_cut_off_and_malformed_samples_against_the_label():
    group = _group(
        [
            ("<think>3 plus 4</think> So \\boxed{7}.", "stop"),
            ("<think>add them</think> The answer is \\boxed{7}", "stop"),
            ("<think>3 + 4 = 7 and then", "length"),  # cut off
            ("<think>hmm</think> it is seven", "stop"),  # no boxed answer
        ]
    )
    assert check_solution("<think>3 + 4 = 7 and then", "length").reason == REASON_TRUNCATED
    assert check_solution("<think>hmm</think> it is seven", "stop").reason == REASON_NO_BOXED
    kept = LabelProblem(0.5, "random", "", 5.0, min_valid=2)(group).to_pylist()[0]
    assert (kept["label"], kept[R.STATUS], kept["confidence"]) == ("7", R.STATUS_OK, 0.5)
    assert (kept["valid_solutions"], kept["samples"], len(kept["sft"])) == (2, 4, 1)
    strict = LabelProblem(0.6, "random", "", 5.0, min_valid=2)(group).to_pylist()[0]
    assert (strict["label"], strict[R.REASON]) == (None, L.REASON_LOW_CONFIDENCE)
    lone = LabelProblem(0.0, "random", "", 5.0, min_valid=3)(group).to_pylist()[0]
    assert lone[R.REASON] == L.REASON_TOO_FEW_VALID and lone["sft"] == []


def test_random_selection_is_the_default_and_deterministic_per_problem():
    assert DistillConfig(teacher=TEACHER).select == "random"
    rows = [{"id": f"s{i}", "tokens_out": 100 - i} for i in range(6)]
    picks = {choose(rows, "random", f"p{n}")[0]["id"] for n in range(40)}
    assert len(picks) > 1  # not always the same (e.g. the shortest) solution
    assert choose(rows, "random", "p3") == choose(list(reversed(rows)), "random", "p3")
    assert [r["id"] for r in choose(rows, "shortest", "p")] == ["s5"]
    assert len(choose(rows, "all", "p")) == 6


def test_min_valid_samples_is_a_checked_setting():
    assert DistillConfig(teacher=TEACHER).min_valid_samples == 2
    with pytest.raises(ValueError, match="min_valid_samples=9 exceeds samples_per_problem=8"):
        DistillConfig(teacher=TEACHER, min_valid_samples=9)
