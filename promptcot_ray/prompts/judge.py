"""The judge prompt: rate a generated (rationale, problem) on five criteria, then a verdict.

Two reply formats (`JudgeConfig.reply_format`), each its own prompt version:
- `schema`: one JSON object (`reply_schema`), enforced by the engine's structured outputs
  and read by `parsing.judgement_json.parse_judgement_json`;
- `free_text`: line-based (one `Criterion: Rating - why` line per criterion, then
  `Verdict: x`), for endpoints without structured outputs, read by `parse_judgement`.
The fixed rubric comes first and the per-row fields last, so every call shares one long
prompt prefix that vLLM's prefix cache computes once. `format_judgement` and
`format_judgement_json` render replies in those shapes for tests and the tiny demo model.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from promptcot_ray.prompts.generator import check_level, numbered
from promptcot_ray.records import CRITERIA, RATINGS, VERDICTS

ReplyFormat = Literal["schema", "free_text"]
VERSIONS: dict[str, str] = {"schema": "judge-v2-schema", "free_text": "judge-v2-text"}
# Bounds a schema reply: a constrained model cannot ramble inside a reason forever.
REASON_MAX_CHARS = 300
RATING_VALUES = tuple(r.capitalize() for r in RATINGS)  # as the JSON enum spells them

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

RUBRIC = """\
A problem setter was given some foundational concepts and a target contest level, wrote a \
design rationale, and then wrote a problem. You will be shown all four below.

Rate the problem on each criterion as Perfect, Acceptable or Bad:
{questions}

Verdict rule: the verdict is perfect only if Factual accuracy and Solvability are both \
Perfect, at least two of Format, Difficulty alignment and Concept coverage are Perfect, and \
no criterion is Bad. Otherwise it is acceptable if no criterion is Bad, and bad if any \
criterion is Bad.

{reply}"""

FREE_TEXT_REPLY = """\
You may think briefly first. End your reply with exactly these six lines, each rating one \
word (Perfect, Acceptable or Bad) followed by a one-line justification:
{shape}"""

SCHEMA_REPLY = """\
Reply with one JSON object and nothing else. For each criterion give a one-sentence reason \
first, then its rating; then the verdict by the rule above:
{shape}"""

ROW_TEMPLATE = """\
Foundational concepts:
{concepts}

Target contest level: {level}

Design rationale:
{rationale}

Problem:
{problem}"""


def version(reply_format: ReplyFormat) -> str:
    """The prompt version rows carry: each reply format is a different prompt."""
    return VERSIONS[reply_format]


def reply_schema() -> dict[str, Any]:
    """The JSON schema of a `schema` reply: five {reason, rating} objects and a verdict.

    `reason` precedes `rating` so a constrained judge writes why before it rates.
    """
    criterion = {
        "type": "object",
        "properties": {
            "reason": {"type": "string", "maxLength": REASON_MAX_CHARS},
            "rating": {"type": "string", "enum": list(RATING_VALUES)},
        },
        "required": ["reason", "rating"],
        "additionalProperties": False,
    }
    properties: dict[str, Any] = {c: criterion for c in CRITERIA}
    properties["verdict"] = {"type": "string", "enum": list(RATING_VALUES)}
    return {
        "type": "object",
        "properties": properties,
        "required": [*CRITERIA, "verdict"],
        "additionalProperties": False,
    }


def _free_text_shape() -> str:
    """The six closing lines the judge must write, with placeholders."""
    lines = [f"{CRITERION_LABELS[c]}: <Perfect|Acceptable|Bad> - <reason>" for c in CRITERIA]
    return "\n".join([*lines, "Verdict: <perfect|acceptable|bad>"])


def _schema_shape() -> str:
    """The JSON object the judge must write, with placeholders, one criterion a line."""
    slot = '{"reason": "<one sentence>", "rating": "<Perfect|Acceptable|Bad>"}'
    lines = [f'  "{c}": {slot},' for c in CRITERIA]
    return "\n".join(["{", *lines, '  "verdict": "<Perfect|Acceptable|Bad>"', "}"])


def rubric(reply_format: ReplyFormat) -> str:
    """The fixed first part of every judge prompt (identical across rows: a shared prefix)."""
    questions = "\n".join(f"- {CRITERION_LABELS[c]}: {CRITERION_QUESTIONS[c]}" for c in CRITERIA)
    if reply_format == "schema":
        reply = SCHEMA_REPLY.format(shape=_schema_shape())
    else:
        reply = FREE_TEXT_REPLY.format(shape=_free_text_shape())
    return RUBRIC.format(questions=questions, reply=reply)


def build_judge_messages(
    concepts: Sequence[str],
    level: str,
    rationale: str,
    problem: str,
    reply_format: ReplyFormat,
) -> list[dict[str, str]]:
    """Build the chat messages asking a judge to rate one generated problem.

    The rubric leads and the row's concepts, level, rationale and problem close the prompt.
    """
    row = ROW_TEMPLATE.format(
        concepts=numbered(concepts),
        level=check_level(level),
        rationale=rationale.strip(),
        problem=problem.strip(),
    )
    user = f"{rubric(reply_format)}\n\n{row}"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def _checked(ratings: Mapping[str, str], verdict: str) -> dict[str, str]:
    """Lower-cased ratings of every criterion; raise on a value outside the vocabulary."""
    values = {c: str(ratings[c]).lower() for c in CRITERIA}
    unknown = sorted(set(values.values()) - set(RATINGS))
    if unknown or verdict.lower() not in VERDICTS:
        raise ValueError(f"ratings/verdict must be in {RATINGS}; got {unknown}, {verdict!r}")
    return values


def format_judgement(
    ratings: Mapping[str, str],
    verdict: str,
    justifications: Mapping[str, str] | None = None,
) -> str:
    """Render a free-text judge reply in the exact shape the `free_text` prompt requests.

    `ratings` maps every criterion to a rating (any case); `verdict` is written as given,
    so tests can build contradictory replies. Missing justifications get a stock line.
    """
    values = _checked(ratings, verdict)
    why = justifications or {}
    lines = [
        f"{CRITERION_LABELS[c]}: {values[c].capitalize()} - "
        f"{why.get(c, DEFAULT_JUSTIFICATIONS[values[c]])}"
        for c in CRITERIA
    ]
    return "\n".join([*lines, f"Verdict: {verdict.lower()}"])


def format_judgement_json(
    ratings: Mapping[str, str],
    verdict: str,
    justifications: Mapping[str, str] | None = None,
) -> str:
    """Render a `schema` judge reply: compact JSON that `reply_schema` accepts.

    Like `format_judgement`, the verdict is written as given (contradictions are possible).
    """
    values = _checked(ratings, verdict)
    why = justifications or {}
    reply: dict[str, Any] = {
        c: {
            "reason": why.get(c, DEFAULT_JUSTIFICATIONS[values[c]]),
            "rating": values[c].capitalize(),
        }
        for c in CRITERIA
    }
    reply["verdict"] = verdict.lower().capitalize()
    return json.dumps(reply, ensure_ascii=False)
