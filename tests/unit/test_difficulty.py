"""The difficulty report: reasoning tokens inside the think block only; a fixed solver."""

from __future__ import annotations

import pytest

from promptcot_ray.evaluate.config import EvaluateConfig
from promptcot_ray.evaluate.difficulty import count_reasoning_tokens, think_text

MODEL = {"model": "student", "device": "cpu"}


@pytest.mark.parametrize(
    ("text", "opened", "inside"),
    [
        ("<think>try 3, then 4</think> The answer is \\boxed{4}.", False, "try 3, then 4"),
        ("try 3, then 4</think>\n\\boxed{4}", True, "try 3, then 4"),  # template opened it
        (
            "<think>still going when the budget ran out",
            False,
            "still going when the budget ran out",
        ),
        ("The answer is \\boxed{4}.", False, ""),  # no think block: no reasoning tokens
        (None, False, ""),
    ],
)
def test_think_text_is_the_inside_of_the_block(text, opened, inside):
    assert think_text(text, opened) == inside


def test_reasoning_tokens_exclude_the_answer_after_the_block():
    from promptcot_ray.llm.tiny_model import build_tokenizer

    tok = build_tokenizer(512)
    reasoning = "Let x be the root; by Vieta the sum is 12, so p = 48."
    answer = " So the final answer is \\boxed{48}, as computed above in detail."
    short, long_answer = count_reasoning_tokens(
        tok, [f"<think>{reasoning}</think>", f"<think>{reasoning}</think>{answer * 5}"], [0, 0]
    )
    assert short == long_answer == len(tok(reasoning, add_special_tokens=False).input_ids)
    assert count_reasoning_tokens(tok, ["\\boxed{1}"], [False]) == [0]


def test_a_fixed_solver_is_a_difficulty_setting():
    solver = {"model": "Qwen/Qwen2.5-Math-72B-Instruct"}
    cfg = EvaluateConfig(model=MODEL, difficulty=True, solver=solver, solver_runs=2)
    assert cfg.solver.model == "Qwen/Qwen2.5-Math-72B-Instruct" and cfg.solver_runs == 2
    with pytest.raises(ValueError, match="solver is only used with difficulty: true"):
        EvaluateConfig(model=MODEL, solver=solver)
