"""Distill and evaluate parts without Ray: solution checks, majority vote, selection,
summary arithmetic, reference answers."""

from __future__ import annotations

import statistics

import pytest

from promptcot_ray.distill.labeling import choose
from promptcot_ray.distill.labels import majority_label
from promptcot_ray.evaluate.sets import reference_answer
from promptcot_ray.evaluate.summary import summarize
from promptcot_ray.solve import solutions as S
from promptcot_ray.solve.grading import GRADE_NO_ANSWER, GRADE_OK, GRADE_TIMEOUT, Grade
from promptcot_ray.solve.stage import final_answer


@pytest.mark.parametrize(
    ("text", "finish", "answer", "reason"),
    [
        ("<think>work</think>\nSo \\boxed{5}.", "stop", "5", None),
        ("work</think> The answer is \\boxed{\\frac{1}{2}}", "stop", "\\frac{1}{2}", None),
        ("<think>work</think> \\boxed{5}", "length", None, S.REASON_TRUNCATED),
        ("", "stop", None, S.REASON_EMPTY),
        ("<think>never closed \\boxed{5}", "stop", None, S.REASON_NO_THINK),
        ("<think>a<think>b</think></think> \\boxed{1}", "stop", None, S.REASON_BAD_THINK),
        ("<think>a</think> x <think>b</think> \\boxed{1}", "stop", None, S.REASON_BAD_THINK),
        ("</think> x <think> \\boxed{1}", "stop", None, S.REASON_BAD_THINK),
        ("<think>a \\boxed{3}</think>   ", "stop", None, S.REASON_NO_ANSWER_TEXT),
        ("<think>a \\boxed{3}</think> so it is 3", "stop", None, S.REASON_NO_BOXED),
        ("<think>a</think> \\boxed{}", "stop", None, S.REASON_NO_BOXED),
    ],
)
def test_check_solution(text, finish, answer, reason):
    checked = S.check_solution(text, finish)
    assert (checked.answer, checked.reason) == (answer, reason)


def test_full_solution_restores_the_opening_tag():
    assert S.full_solution("work</think> \\boxed{1}", True) == "<think>\nwork</think> \\boxed{1}"
    assert S.full_solution("<think>w</think>", False) == "<think>w</think>"


def test_final_answer_reads_after_the_think_block():
    assert final_answer("<think>maybe \\boxed{2}</think> \\boxed{3}") == "3"
    assert final_answer("no think, \\boxed{4}") == "4"


def _string_grader(items):
    """Equivalence by a fixed table (a stand-in for math-verify in these arithmetic tests)."""
    same = {
        frozenset({"1/2", "0.5"}),
        frozenset({"1/2", "\\frac{1}{2}"}),
        frozenset({"0.5", "\\frac{1}{2}"}),
    }
    return [Grade(a == b or frozenset({a, b}) in same, GRADE_OK) for a, b, _ in items]


def test_majority_groups_by_equivalence():
    result = majority_label(["0.5", "3", "1/2", "\\frac{1}{2}", "3"], _string_grader)
    assert result.label == "0.5"  # smallest string of the largest group
    assert result.confidence == pytest.approx(3 / 5)
    assert result.agreeing == (0, 2, 3) and result.groups == 2


def test_majority_ties_are_broken_the_same_way_in_any_order():
    a = majority_label(["7", "5", "7", "5"], _string_grader)
    b = majority_label(["5", "7", "5", "7"], _string_grader)
    assert a.label == b.label == "5" and a.confidence == 0.5


def test_majority_of_nothing():
    result = majority_label([], _string_grader)
    assert result.label is None and result.confidence == 0.0


def test_choose_shortest_random_all():
    rows = [
        {"id": "b", "tokens_out": 5},
        {"id": "a", "tokens_out": 9},
        {"id": "c", "tokens_out": 5},
    ]
    assert [r["id"] for r in choose(rows, "shortest", "p")] == ["b"]
    assert [r["id"] for r in choose(rows, "all", "p")] == ["a", "b", "c"]
    assert choose(rows, "random", "p") == choose(list(reversed(rows)), "random", "p")


def test_summary_arithmetic():
    rows = []
    correct = {
        0: [True, True, False, False],
        1: [True, False, False, False],
        2: [True, True, True, False],
    }
    for run, outcomes in correct.items():
        for item, ok in enumerate(outcomes):
            rows.append(
                {
                    "benchmark": "b",
                    "problem_id": f"p{item}",
                    "sample_index": run,
                    "correct": ok,
                    "tokens_out": 10 * (item + 1),
                    "status": "ok",
                    "grade_status": GRADE_TIMEOUT
                    if (run, item) == (1, 3)
                    else (GRADE_NO_ANSWER if (run, item) == (0, 3) else GRADE_OK),
                    "finish_reason": "stop",
                }
            )
    s = summarize(rows)["b"]
    assert s["accuracy_per_run"] == [0.5, 0.25, 0.75]
    assert s["accuracy_mean"] == pytest.approx(0.5)
    assert s["accuracy_std"] == pytest.approx(statistics.stdev([0.5, 0.25, 0.75]))
    assert s["accuracy_std"] == pytest.approx(0.25)
    assert s["mean_reasoning_tokens"] == pytest.approx(25.0)
    assert (s["items"], s["runs"], s["samples"], s["timeouts"], s["no_answer"]) == (4, 3, 12, 1, 1)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Natalia sold 48/2 = 24 clips.\n#### 72", "72"),
        ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"),
        (" 33 ", "33"),
        (None, None),
        (42, "42"),
    ],
)
def test_reference_answer(raw, expected):
    assert reference_answer(raw) == expected


def test_unreachable_hf_benchmark_names_the_set_and_the_offline_fix(tmp_path):
    from promptcot_ray.config import ConfigError, StorageConfig
    from promptcot_ray.evaluate.config import EvalSet
    from promptcot_ray.evaluate.sets import load_set
    from promptcot_ray.storage import RunDir

    spec = EvalSet(name="nowhere", hf_dataset="no-such-org/no-such-set")
    with pytest.raises(ConfigError, match=r"benchmarks\[nowhere\].*local JSONL"):
        load_set(spec, StorageConfig(), RunDir(str(tmp_path)))


def test_eval_folder_of_a_trained_model_is_its_name():
    from promptcot_ray.config import LLMConfig
    from promptcot_ray.evaluate.config import EvaluateConfig
    from promptcot_ray.evaluate.job import eval_name

    def name(model):
        return eval_name(EvaluateConfig(model=LLMConfig(model=model)))

    assert name("/runs/r1/models/student-ds7b/final") == "student-ds7b"
    assert name("s3://b/r/models/gen/final/") == "gen"
    assert name("deepseek-ai/DeepSeek-R1-Distill-Qwen-7B") == "DeepSeek-R1-Distill-Qwen-7B"


def test_changed_sampling_settings_are_refused(tmp_path):
    from promptcot_ray.config import ConfigError, LLMConfig
    from promptcot_ray.solve.stage import check_generation_settings
    from promptcot_ray.storage import RunDir

    run = RunDir(str(tmp_path))
    llm = LLMConfig(model="/m", temperature=0.6)
    check_generation_settings(run, "eval/x/generations", llm, "solve")
    check_generation_settings(run, "eval/x/generations", llm, "solve")  # same: fine
    with pytest.raises(ConfigError, match="temperature"):
        hot = llm.model_copy(update={"temperature": 1.0})
        check_generation_settings(run, "eval/x/generations", hot, "solve")
