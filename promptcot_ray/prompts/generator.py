"""The problem-generator prompt: concepts + level in, design rationale + problem out.

The same prompt serves as the SFT prompt and as the synthesis prompt, so a trained
generator sees exactly what it was trained on. Two formats: `chat` (system + user messages,
rendered by the model's chat template) and `raw` (one plain text, no template, the way the
authors' released generator is prompted; the completion starts right where it ends). The
completion is marked up with the tags below; `parsing.parse_draft` reads them back.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from promptcot_ray.records import CONTEST_LEVELS

PromptFormat = Literal["chat", "raw"]
VERSION = "generator-v1"  # the chat format
RAW_VERSION = "generator-raw-v1"  # the plain-text format: a different prompt, its own version

RATIONALE_BEGIN = "<!-- BEGIN RATIONALE -->"
RATIONALE_END = "<!-- END RATIONALE -->"
PROBLEM_BEGIN = "<!-- BEGIN PROBLEM -->"
PROBLEM_END = "<!-- END PROBLEM -->"

SYSTEM = (
    "You are a seasoned author of mathematics competition problems. You design original, "
    "challenging problems the way expert setters do: you start from the ideas a problem "
    "should test and the contest it is meant for, reason about how to combine them, and only "
    "then write the statement."
)

USER_TEMPLATE = """\
Design one new competition problem.

Foundational concepts it must draw on:
{concepts}

Target contest level: {level}

First think through your design rationale: how the concepts can interact in a single \
problem, which combination creates the key difficulty, how to calibrate that difficulty to \
{level}, and how to make the problem well-posed with a single definite answer. Then write \
the problem statement itself: self-contained, precise, with no hints, solution or answer.

Reply in exactly this format:
{rationale_begin}
(your design rationale)
{rationale_end}

{problem_begin}
(the problem statement)
{problem_end}"""


def numbered(items: Sequence[str]) -> str:
    """Render items as a `1. ...` list, the shape every prompt here uses for concepts."""
    return "\n".join(f"{index}. {item.strip()}" for index, item in enumerate(items, start=1))


def check_level(level: str) -> str:
    """Return `level` if it is a known contest level; a typo would silently skew difficulty.

    Any of CONTEST_LEVELS: seeds keep their own level (AMC8, AHSME, ...) in training rows.
    Which levels synthesis may *draw* is restricted elsewhere (CombinationConfig.levels).
    """
    if level not in CONTEST_LEVELS:
        raise ValueError(
            f"level={level!r} is not a known contest level; use one of {CONTEST_LEVELS}"
        )
    return level


def version(prompt_format: PromptFormat) -> str:
    """The prompt version rows carry for a format: raw and chat prompts differ."""
    return RAW_VERSION if prompt_format == "raw" else VERSION


def build_generator_messages(concepts: Sequence[str], level: str) -> list[dict[str, str]]:
    """Build the chat messages asking the generator for a rationale, then a problem."""
    if not concepts:
        raise ValueError("concepts is empty; pass the sampled concept combination")
    user = USER_TEMPLATE.format(
        concepts=numbered(concepts),
        level=check_level(level),
        rationale_begin=RATIONALE_BEGIN,
        rationale_end=RATIONALE_END,
        problem_begin=PROBLEM_BEGIN,
        problem_end=PROBLEM_END,
    )
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


RAW_TEMPLATE = """\
The following is a new mathematics competition problem, designed by an expert setter.

Foundational concepts:
{concepts}

Difficulty level: {level}

The setter first writes out the design rationale (how the concepts combine, where the \
difficulty comes from, how it is calibrated to the level), then the problem statement, each \
between its tags.

"""


def build_generator_raw_prompt(concepts: Sequence[str], level: str) -> str:
    """The plain-text generator prompt (no chat template); the completion follows it."""
    if not concepts:
        raise ValueError("concepts is empty; pass the sampled concept combination")
    return RAW_TEMPLATE.format(concepts=numbered(concepts), level=check_level(level))


def build_generator_prompt(
    concepts: Sequence[str], level: str, prompt_format: PromptFormat
) -> list[dict[str, str]] | str:
    """The generator prompt in `prompt_format`: chat messages, or one plain text."""
    if prompt_format == "raw":
        return build_generator_raw_prompt(concepts, level)
    return build_generator_messages(concepts, level)


def format_completion(rationale: str, problem: str) -> str:
    """Render the tagged completion an SFT row trains on; `parse_draft` reads it back."""
    return (
        f"{RATIONALE_BEGIN}\n{rationale.strip()}\n{RATIONALE_END}\n\n"
        f"{PROBLEM_BEGIN}\n{problem.strip()}\n{PROBLEM_END}"
    )
