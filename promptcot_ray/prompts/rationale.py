"""The rationale prompt: reverse-engineer the setter's thinking behind a seed problem.

Its output is the rationale half of the generator's SFT completion. A good rationale is
precise enough that following it recreates the problem, and natural enough that it could
have been derived from the concepts and level alone (METHOD.md, step 5).
"""

from __future__ import annotations

from collections.abc import Sequence

from promptcot_ray.prompts.generator import (
    RATIONALE_BEGIN,
    RATIONALE_END,
    check_level,
    numbered,
)

VERSION = "rationale-v1"

SYSTEM = (
    "You are an expert author of mathematics competition problems who explains, step by "
    "step, how problems are designed."
)

USER_TEMPLATE = """\
Below is a competition problem, the foundational concepts it is built on and the contest \
level it was written for.

Foundational concepts:
{concepts}

Contest level: {level}

Problem:
{problem}

Reconstruct the thinking process a setter could have followed to arrive at exactly this \
problem, starting only from the concepts and the level. Write it as the setter's own \
reasoning, step by step: which concepts to combine and why, where the key difficulty comes \
from, how it is tuned to {level}, and each concrete design decision (objects, numbers, \
conditions, what is asked).

Two requirements pull against each other; satisfy both:
- Precise: another setter following your rationale would write this same problem.
- Natural: every step follows plausibly from the concepts and level, without appearing to \
know the final problem in advance.

Do not solve the problem. Put the rationale, and nothing else, between these tags:
{rationale_begin}
(the rationale)
{rationale_end}"""


def build_rationale_messages(
    problem: str, concepts: Sequence[str], level: str
) -> list[dict[str, str]]:
    """Build the chat messages asking for the design rationale behind a seed problem."""
    if not concepts:
        raise ValueError("concepts is empty; pass the problem's extracted concepts")
    user = USER_TEMPLATE.format(
        concepts=numbered(concepts),
        level=check_level(level),
        problem=problem.strip(),
        rationale_begin=RATIONALE_BEGIN,
        rationale_end=RATIONALE_END,
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
