"""The concept-extraction prompt: name the foundational concepts a seed problem tests.

The reply shape is a numbered list of k concepts then one `Level: X` line, which
`parsing.parse_concepts` reads back (it also accepts bullets and list literals).
"""

from __future__ import annotations

from promptcot_ray.records import CONTEST_LEVELS

VERSION = "concepts-v2"  # v2: any contest level, not only the eight generation levels

SYSTEM = (
    "You are an experienced mathematics educator and competition coach. You can tell which "
    "pieces of core curriculum knowledge a competition problem is built on."
)

USER_TEMPLATE = """\
Problem:
{problem}

Name the {k} foundational concepts that this problem tests. Each concept must be:
- core curriculum knowledge (a theorem, definition, formula or standard method),
- stated precisely and on its own, understandable without the problem,
- essential to solving this problem,
- a general principle, not a trick or a step specific to this problem.

Then name the contest level whose problems this one most resembles in difficulty, choosing \
exactly one of: {levels}.

Reply with exactly {k} numbered lines, one concept per line, then one final line with the \
level, and nothing else:
1. <concept>
2. <concept>
...
{k}. <concept>
Level: <one of {levels}>"""


def build_concept_messages(problem: str, k: int) -> list[dict[str, str]]:
    """Build the chat messages asking for `k` foundational concepts and a contest level."""
    if k < 1:
        raise ValueError(f"k={k} must be at least 1 (the method uses 5 concepts)")
    user = USER_TEMPLATE.format(problem=problem.strip(), k=k, levels=", ".join(CONTEST_LEVELS))
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]
