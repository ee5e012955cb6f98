"""Checking one teacher solution: think block, final answer, not cut off.

Pure functions over the generated text and vLLM's finish reason, so every rejection has a
reason a person can read and a test can pin down.
"""

from __future__ import annotations

from dataclasses import dataclass

from promptcot_ray.solve.grading import extract_boxed

THINK_OPEN, THINK_CLOSE = "<think>", "</think>"

# reason codes of rejected solutions (ledger keys of the distill job)
REASON_TRUNCATED = "solution_truncated"  # hit the token limit (finish reason "length")
REASON_EMPTY = "solution_empty"
REASON_NO_THINK = "solution_missing_think"  # no closing </think>
REASON_BAD_THINK = "solution_malformed_think"  # nested, repeated, or out-of-order tags
REASON_NO_ANSWER_TEXT = "solution_empty_answer"  # nothing after </think>
REASON_NO_BOXED = "solution_no_boxed_answer"  # an answer part without \boxed{} or \fbox{}
REASON_ERROR = "solution_generation_error"  # the engine failed on this sample


@dataclass(frozen=True)
class CheckedSolution:
    answer: str | None  # the last boxed answer of the answer part; None when rejected
    reason: str | None  # None when the solution is valid
    think_opened_by_prompt: bool = False  # the template's generation prompt opened <think>


def check_solution(text: str | None, finish_reason: str | None) -> CheckedSolution:
    """Validate one long-CoT solution and pull out its final answer.

    Reasoning templates (DeepSeek-R1's among them) put `<think>` in the generation prompt,
    so the reply holds only the closing tag: a reply with exactly one `</think>` and no
    `<think>` is accepted as opened by the prompt.
    """
    if finish_reason == "length":
        return CheckedSolution(None, REASON_TRUNCATED)
    if not text or not text.strip():
        return CheckedSolution(None, REASON_EMPTY)
    opens, closes = text.count(THINK_OPEN), text.count(THINK_CLOSE)
    if closes == 0:
        return CheckedSolution(None, REASON_NO_THINK)
    if closes > 1 or opens > 1 or (opens == 1 and text.index(THINK_OPEN) > text.index(THINK_CLOSE)):
        return CheckedSolution(None, REASON_BAD_THINK)
    answer_part = text.split(THINK_CLOSE, 1)[1]
    if not answer_part.strip():
        return CheckedSolution(None, REASON_NO_ANSWER_TEXT)
    answer = extract_boxed(answer_part)
    if answer is None or not answer.strip():
        return CheckedSolution(None, REASON_NO_BOXED)
    return CheckedSolution(answer, None, think_opened_by_prompt=opens == 0)


def full_solution(text: str, think_opened_by_prompt: bool) -> str:
    """The SFT completion: the whole solution, with the opening tag the prompt supplied."""
    return f"{THINK_OPEN}\n{text.lstrip()}" if think_opened_by_prompt else text
