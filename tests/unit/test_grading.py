"""Answer extraction and equivalence (math-verify in a process pool with a hard timeout)."""

from __future__ import annotations

import time

import pytest

from promptcot_ray.solve.grading import (
    GRADE_NO_ANSWER,
    GRADE_OK,
    GRADE_TIMEOUT,
    GradingPool,
    extract_boxed,
    is_equivalent,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("so the answer is \\boxed{42}.", "42"),
        ("\\boxed{\\frac{1}{\\sqrt{2}}}", "\\frac{1}{\\sqrt{2}}"),
        ("\\boxed{\\left\\{1, 2\\right\\}}", "\\left\\{1, 2\\right\\}"),
        ("first \\boxed{1} then \\boxed{2}", "2"),
        ("\\fbox{x^{2}+1}", "x^{2}+1"),
        ("\\boxed{a} and finally \\fbox{b}", "b"),
        ("$\\boxed 7$", "7"),
        ("no box here", None),
        ("\\boxed{unclosed", None),
        ("\\boxed{1} then \\boxed{broken", "1"),
        ("", None),
        (None, None),
        ("\\boxedx{3}", None),
    ],
)
def test_extract_boxed(text, expected):
    assert extract_boxed(text) == expected


EQUIVALENT = [
    ("\\frac{1}{2}", "0.5"),
    ("\\dfrac12", "\\frac{1}{2}"),
    ("2\\sqrt{2}", "\\sqrt{8}"),
    ("0.25", "\\frac14"),
    ("(0, 1]", "(0,1]"),
    ("\\{1, 2, 3\\}", "\\{3, 2, 1\\}"),
    ("(1, 2)", "(1,2)"),
    ("30^\\circ", "30"),
    ("50\\%", "50"),
    ("\\text{Yes}", "yes"),
    ("\\frac{ 3 }{ 4 }", "\\frac{3}{4}"),
    ("\\left( 2, 3 \\right)", "(2,3)"),
    ("x = 5", "5"),
]
NOT_EQUIVALENT = [
    ("\\frac{1}{3}", "0.5"),
    ("(0, 1)", "[0, 1]"),
    ("\\{1, 2\\}", "\\{1, 2, 3\\}"),
    ("2\\sqrt{3}", "\\sqrt{8}"),
    ("(1, 2)", "(2, 1)"),
    ("no", "yes"),
]


@pytest.fixture(scope="module")
def pool():
    grading = GradingPool(processes=2, timeout_s=10.0)
    yield grading
    grading.close()


def test_equivalent_and_not(pool):
    items = [(a, b, "math") for a, b in EQUIVALENT + NOT_EQUIVALENT]
    grades = pool.grade(items)
    assert all(g.status == GRADE_OK for g in grades), grades
    got = [g.correct for g in grades]
    expected = [True] * len(EQUIVALENT) + [False] * len(NOT_EQUIVALENT)
    wrong = [items[i][:2] for i, (a, b) in enumerate(zip(got, expected, strict=True)) if a != b]
    assert not wrong


def test_numeric_mode_for_gsm8k(pool):
    grades = pool.grade(
        [("1,234", "1234", "numeric"), ("$18", "18", "numeric"), ("18.5", "18", "numeric")]
    )
    assert [g.correct for g in grades] == [True, True, False]


def test_pathological_expression_times_out_without_hanging_the_rest():
    grading = GradingPool(processes=1, timeout_s=2.0)
    try:
        started = time.monotonic()
        grades = grading.grade(
            [
                ("9^{9^{9^{9^{9^{9}}}}}", "9^{9^{9^{9^{9^{8}}}}}", "math"),
                ("\\frac{1}{2}", "0.5", "math"),
                (None, "3", "math"),
            ]
        )
        elapsed = time.monotonic() - started
    finally:
        grading.close()
    assert grades[0].status == GRADE_TIMEOUT and not grades[0].correct
    assert grades[1].status == GRADE_OK and grades[1].correct  # graded after the reset
    assert grades[2].status == GRADE_NO_ANSWER
    assert elapsed < 30


def test_public_is_equivalent():
    assert is_equivalent("\\frac{2}{4}", "0.5")
    assert not is_equivalent("3", "4")
