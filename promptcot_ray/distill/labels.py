"""Pseudo-labels: the majority answer of a problem's valid solutions, by equivalence.

Answers are grouped by mathematical equivalence (math-verify, through the grading pool), not
by string, so "1/2" and "0.5" vote together. Grouping and tie-breaking depend only on the set
of answers, never on the order samples arrived in, so re-runs give the same label.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from promptcot_ray.evaluate.grading import Grade

# reasons a problem gets no label (ledger keys of the distill job)
REASON_NO_VALID_SOLUTION = "no_valid_solution"
REASON_LOW_CONFIDENCE = "low_confidence"

Grader = Callable[[Sequence[tuple[str, str, str]]], list[Grade]]


@dataclass(frozen=True)
class PseudoLabel:
    label: str | None  # the majority group's representative answer
    confidence: float  # majority group size / valid samples (0 when none)
    agreeing: tuple[int, ...]  # indices (into the answers given) of the majority group
    groups: int  # distinct equivalence groups


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def majority_label(answers: Sequence[str], grade: Grader) -> PseudoLabel:
    """Group `answers` by equivalence and return the largest group.

    Ties go to the group whose representative (its smallest answer string) sorts first.
    """
    if not answers:
        return PseudoLabel(None, 0.0, (), 0)
    distinct = sorted(set(answers))
    parent = list(range(len(distinct)))
    pairs = [(i, j) for i in range(len(distinct)) for j in range(i + 1, len(distinct))]
    if pairs:
        grades = grade([(distinct[j], distinct[i], "math") for i, j in pairs])
        for (i, j), g in zip(pairs, grades, strict=True):
            if g.correct:  # union, keeping the smaller index as the root
                ri, rj = _find(parent, i), _find(parent, j)
                parent[max(ri, rj)] = min(ri, rj)
    root_of = {a: _find(parent, k) for k, a in enumerate(distinct)}
    members: dict[int, list[int]] = {}
    for index, answer in enumerate(answers):
        members.setdefault(root_of[answer], []).append(index)
    # largest group first; on a tie the smaller representative (roots are sorted indices)
    root, agreeing = min(members.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    return PseudoLabel(
        label=distinct[root],
        confidence=len(agreeing) / len(answers),
        agreeing=tuple(agreeing),
        groups=len(members),
    )
