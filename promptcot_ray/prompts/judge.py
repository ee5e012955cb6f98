"""The judge prompt: rate a generated (rationale, problem) on five criteria, then a verdict.

The reply shape is fixed and line-based (one `Criterion: Rating - why` line per criterion,
then `Verdict: x`) so `parsing.parse_judgement` reads structure, never loose words.
`format_judgement` renders a reply in that same shape for tests and demo judge training.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from promptcot_ray.prompts.generator import check_level, numbered
from promptcot_ray.records import CRITERIA, RATINGS, VERDICTS

VERSION = "judge-v1"

CRITERION_LABELS = {
    "format": "Format",
    "factual_accuracy": "Factual accuracy",
    "difficulty_alignment": "Difficulty alignment",
    "concept_coverage": "Concept coverage",
    "solvability": "Solvability",
}
CRITERION_QUESTIONS = {
    "format": "Is the problem a clean, self-contained statement, separate from the rationale, "
    "with no solution, answer or commentary leaked into it?",
    "factual_accuracy": "Are all mathematical facts, definitions and given data correct and "
    "mutually consistent?",
    "difficulty_alignment": "Does the difficulty match the target contest level: neither "
    "routine for it nor far beyond it?",
    "concept_coverage": "Does solving the problem genuinely require the listed concepts, "
    "combined rather than merely mentioned?",
    "solvability": "Is the problem well-posed, with enough information for a unique, definite "
    "answer (or a provable claim) reachable by contest methods?",
}
DEFAULT_JUSTIFICATIONS = {
    "perfect": "fully meets this criterion.",
    "acceptable": "meets this criterion with minor issues.",
    "bad": "fails this criterion.",
}

SYSTEM = (
    "You are a strict reviewer of mathematics competition problems. You check problems "
    "written for a given contest level against a fixed rubric and report in an exact, "
    "machine-readable format."
)

USER_TEMPLATE = """\
A problem setter was given these foundational concepts and a target contest level, wrote a \
design rationale, and then wrote a problem.

Foundational concepts:
{concepts}

Target contest level: {level}

Design rationale:
{rationale}

Problem:
{problem}

Rate the problem on each criterion as Perfect, Acceptable or Bad:
{questions}

Verdict rule: the verdict is perfect only if Factual accuracy and Solvability are both \
Perfect, at least two of Format, Difficulty alignment and Concept coverage are Perfect, and \
no criterion is Bad. Otherwise it is acceptable if no criterion is Bad, and bad if any \
criterion is Bad.

You may think briefly first. End your reply with exactly these six lines, each rating one \
word (Perfect, Acceptable or Bad) followed by a one-line justification:
{shape}"""


def _shape() -> str:
    """The six closing lines the judge must write, with placeholders."""
    lines = [f"{CRITERION_LABELS[c]}: <Perfect|Acceptable|Bad> - <reason>" for c in CRITERIA]
    return "\n".join([*lines, "Verdict: <perfect|acceptable|bad>"])


def build_judge_messages(
    concepts: Sequence[str], level: str, rationale: str, problem: str
) -> list[dict[str, str]]:
    """Build the chat messages asking a judge to rate one generated problem."""
    questions = "\n".join(f"- {CRITERION_LABELS[c]}: {CRITERION_QUESTIONS[c]}" for c in CRITERIA)
    user = USER_TEMPLATE.format(
        concepts=numbered(concepts),
        level=check_level(level),
        rationale=rationale.strip(),
        problem=problem.strip(),
        questions=questions,
        shape=_shape(),
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def format_judgement(
    ratings: Mapping[str, str],
    verdict: str,
    justifications: Mapping[str, str] | None = None,
) -> str:
    """Render a judge reply in the exact shape `build_judge_messages` requests.

    `ratings` maps every criterion to a rating (any case); `verdict` is written as given,
    so tests can build contradictory replies. Missing justifications get a stock line.
    """
    values = {c: str(ratings[c]).lower() for c in CRITERIA}
    unknown = sorted(set(values.values()) - set(RATINGS))
    if unknown or verdict.lower() not in VERDICTS:
        raise ValueError(f"ratings/verdict must be in {RATINGS}; got {unknown}, {verdict!r}")
    why = justifications or {}
    lines = [
        f"{CRITERION_LABELS[c]}: {values[c].capitalize()} - "
        f"{why.get(c, DEFAULT_JUSTIFICATIONS[values[c]])}"
        for c in CRITERIA
    ]
    return "\n".join([*lines, f"Verdict: {verdict.lower()}"])
