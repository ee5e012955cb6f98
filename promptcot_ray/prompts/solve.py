"""The solve prompt: one problem, asking for step-by-step reasoning and a boxed answer.

The teacher sees it when distilling, the students are trained on it (the SFT prompt) and
evaluated with it, so the three can never drift apart.
"""

from __future__ import annotations

VERSION = "solve-v1"

INSTRUCTION = "Please reason step by step, and put your final answer within \\boxed{}."


def build_solve_messages(problem: str, instruction: str = INSTRUCTION) -> list[dict[str, str]]:
    """Chat messages for solving `problem` (one user turn, as the DeepSeek-R1 models expect)."""
    return [{"role": "user", "content": f"{problem.strip()}\n\n{instruction}"}]
