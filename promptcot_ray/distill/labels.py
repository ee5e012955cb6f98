"""Pseudo-labels: the strict-majority answer of a problem's samples, grouped by equivalence.

Answers are grouped by mathematical equivalence (math-verify, through the grading pool), not
by string, so "1/2" and "0.5" vote together. A label needs a strict majority of the valid
answers (more than half agree; a tie for the largest group is rejected, never broken by
spelling), at least `min_valid` valid samples, and a confidence (the majority's share of ALL
samples, so cut-off and malformed ones count against it) of at least `min_confidence`.
Grouping depends only on the set of answers, never on the order samples arrived in.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from promptcot_ray.solve.grading import Grade

# reasons a problem gets no label (ledger keys of the distill job)
REASON_NO_VALID_SOLUTION = "no_valid_solution"
REASON_TOO_FEW_VALID = "too_few_valid_solutions"  # fewer valid samples than min_valid_samples
REASON_LABEL_TIE = "label_tie"  # two or more answer groups share the largest size
REASON_NO_MAJORITY = "no_strict_majority"  # the largest group is half the valid answers or less
REASON_LOW_CONFIDENCE = "low_confidence"  # majority / all samples < min_confidence

Grader = Callable[[Sequence[tuple[str, str, str]]], list[Grade]]


@dataclass(frozen=True)
class PseudoLabel:
    label: str | None  # the largest group's representative answer (its smallest string)
    confidence: float  # largest group size / ALL samples, invalid ones included (0 when none)
    agreeing: tuple[int, ...]  # indices (into the answers given) of the largest group
    groups: int  # distinct equivalence groups
    tied: bool = False  # another group is as large as the largest
    valid: int = 0  # answers voted (valid samples)


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def _groups(answers: Sequence[str], grade: Grader) -> dict[int, list[int]]:
    """Equivalence groups of `answers`: root (index into the sorted distinct answers) -> members."""
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
    return members


def majority_label(
    answers: Sequence[str], grade: Grader, samples: int | None = None
) -> PseudoLabel:
    """Group the valid `answers` by equivalence and return the largest group.

    `samples`: how many samples were drawn in all (default: len(answers)); the confidence is
    counted over them. A tie for the largest group is reported (`tied`), not broken.
    """
    total = max(samples if samples is not None else len(answers), len(answers))
    if not answers:
        return PseudoLabel(None, 0.0, (), 0)
    members = _groups(answers, grade)
    distinct = sorted(set(answers))
    ranked = sorted(members.items(), key=lambda kv: (-len(kv[1]), kv[0]))
    root, agreeing = ranked[0]
    tied = len(ranked) > 1 and len(ranked[1][1]) == len(agreeing)
    return PseudoLabel(
        label=distinct[root],
        confidence=len(agreeing) / total,
        agreeing=tuple(agreeing),
        groups=len(members),
        tied=tied,
        valid=len(answers),
    )


def rejection(result: PseudoLabel, min_valid: int, min_confidence: float) -> str | None:
    """Why `result` may not be used as a label, or None when it may (the rule above)."""
    if result.valid == 0:
        return REASON_NO_VALID_SOLUTION
    if result.valid < min_valid:
        return REASON_TOO_FEW_VALID
    if result.tied:
        return REASON_LABEL_TIE
    if 2 * len(result.agreeing) <= result.valid:
        return REASON_NO_MAJORITY
    if result.confidence < min_confidence:
        return REASON_LOW_CONFIDENCE
    return None
