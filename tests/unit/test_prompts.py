"""The prompt builders: message shape, content, and agreement with the reply parsers."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from promptcot_ray.parsing import (
    SOURCE_VERDICT_LINE,
    parse_concepts,
    parse_draft,
    parse_judgement,
    parse_rationale,
    verdict_from_ratings,
)
from promptcot_ray.parsing.judgement_json import parse_judgement_json
from promptcot_ray.prompts import concepts, generator, judge, rationale
from promptcot_ray.records import CRITERIA, LEVELS, RATINGS, REASON_JUDGE_CONTRADICTORY

CONCEPTS = ("Vieta's formulas", "AM-GM inequality", "Modular arithmetic")
PROBLEM = "Let $a, b, c$ be the roots of $x^3 - 12x^2 + px - 48 = 0$. Find $p$."
RATIONALE = "Start from Vieta's formulas, then force equality in AM-GM to pin down $p$."

BUILDERS = {
    "generator": lambda: generator.build_generator_messages(CONCEPTS, "HMMT-Feb"),
    "judge": lambda: judge.build_judge_messages(
        CONCEPTS, "HMMT-Feb", RATIONALE, PROBLEM, "free_text"
    ),
    "judge_schema": lambda: judge.build_judge_messages(
        CONCEPTS, "HMMT-Feb", RATIONALE, PROBLEM, "schema"
    ),
    "concepts": lambda: concepts.build_concept_messages(PROBLEM, 5),
    "rationale": lambda: rationale.build_rationale_messages(PROBLEM, CONCEPTS, "HMMT-Feb"),
}


def _user_text(messages: list[dict[str, str]]) -> str:
    return messages[-1]["content"]


@pytest.mark.parametrize("name", list(BUILDERS))
def test_builders_return_system_then_user_messages(name: str) -> None:
    messages = BUILDERS[name]()
    assert [m["role"] for m in messages] == ["system", "user"]
    assert all(set(m) == {"role", "content"} for m in messages)
    assert all(isinstance(m["content"], str) and m["content"].strip() for m in messages)


@pytest.mark.parametrize(
    ("module", "version"),
    [
        (generator, "generator-v1"),
        (concepts, "concepts-v2"),
        (rationale, "rationale-v1"),
    ],
)
def test_versions(module: object, version: str) -> None:
    assert version == module.VERSION


def test_judge_versions_follow_the_reply_format() -> None:
    assert (judge.version("schema"), judge.version("free_text")) == (
        "judge-v2-schema",
        "judge-v2-text",
    )


@pytest.mark.parametrize("name", ["generator", "judge", "judge_schema", "rationale"])
def test_prompts_contain_concepts_and_level(name: str) -> None:
    text = _user_text(BUILDERS[name]())
    assert all(f"{i}. {c}" in text for i, c in enumerate(CONCEPTS, 1))
    assert "HMMT-Feb" in text


@pytest.mark.parametrize("name", ["judge", "judge_schema", "concepts", "rationale"])
def test_prompts_contain_the_problem(name: str) -> None:
    assert PROBLEM in _user_text(BUILDERS[name]())


@pytest.mark.parametrize("name", ["judge", "judge_schema"])
def test_judge_prompt_contains_the_rationale_and_the_rule(name: str) -> None:
    text = _user_text(BUILDERS[name]())
    assert RATIONALE in text
    assert all(judge.CRITERION_LABELS[c] in text for c in CRITERIA)
    assert "Verdict rule" in text and "no criterion is Bad" in text


@pytest.mark.parametrize("reply_format", ["schema", "free_text"])
def test_judge_prompt_puts_the_rubric_first_and_the_row_last(reply_format) -> None:
    """Two rows' prompts share the whole rubric as a prefix (vLLM's prefix cache reuses it)
    and differ only after it; the problem closes the prompt."""
    a = judge.build_judge_messages(CONCEPTS, "HMMT-Feb", RATIONALE, PROBLEM, reply_format)
    b = judge.build_judge_messages(["Parity"], "AIME", "Another plan.", "Find n.", reply_format)
    rubric = judge.rubric(reply_format)
    assert a[0] == b[0] and _user_text(a).startswith(rubric) and _user_text(b).startswith(rubric)
    row_a = _user_text(a)[len(rubric) :]
    assert CONCEPTS[0] not in rubric and "HMMT-Feb" not in rubric and PROBLEM not in rubric
    assert row_a.index(CONCEPTS[0]) < row_a.index(RATIONALE) < row_a.index(PROBLEM)
    assert _user_text(a).rstrip().endswith(PROBLEM)


def test_judge_prompts_ask_for_their_own_reply_format() -> None:
    assert '"verdict"' in judge.rubric("schema") and "Verdict: <" not in judge.rubric("schema")
    assert "Verdict: <" in judge.rubric("free_text") and "JSON" not in judge.rubric("free_text")


def test_concept_prompt_names_k_and_every_level() -> None:
    text = _user_text(concepts.build_concept_messages(PROBLEM, 7))
    assert "7 foundational concepts" in text and "7. <concept>" in text
    assert all(level in text for level in LEVELS)


@pytest.mark.parametrize(
    "build",
    [
        lambda: generator.build_generator_messages(CONCEPTS, "Level 5"),
        lambda: generator.build_generator_messages([], "AIME"),
        lambda: judge.build_judge_messages(CONCEPTS, "aime", RATIONALE, PROBLEM, "schema"),
        lambda: rationale.build_rationale_messages(PROBLEM, CONCEPTS, "hmmt feb"),
        lambda: rationale.build_rationale_messages(PROBLEM, [], "AIME"),
        lambda: concepts.build_concept_messages(PROBLEM, 0),
    ],
    ids=["gen_level", "gen_concepts", "judge_level", "rat_level", "rat_concepts", "k_zero"],
)
def test_builders_reject_bad_arguments(build: Callable[[], object]) -> None:
    with pytest.raises(ValueError):
        build()


# --- prompts and parsers agree -----------------------------------------------------------------


def _requested_shape(messages: list[dict[str, str]], n_lines: int) -> str:
    """The closing lines of a prompt: the reply shape it asks for, with placeholders."""
    return "\n".join(_user_text(messages).splitlines()[-n_lines:])


def test_generator_prompt_shape_parses_when_filled_in() -> None:
    shape = _requested_shape(BUILDERS["generator"](), 7)
    assert shape.startswith(generator.RATIONALE_BEGIN) and shape.endswith(generator.PROBLEM_END)
    reply = shape.replace("(your design rationale)", RATIONALE).replace(
        "(the problem statement)", PROBLEM
    )
    assert reply == generator.format_completion(RATIONALE, PROBLEM)
    parsed = parse_draft(reply)
    assert (parsed.rationale, parsed.problem, parsed.reason) == (RATIONALE, PROBLEM, None)


def test_rationale_prompt_shape_parses_when_filled_in() -> None:
    shape = _requested_shape(BUILDERS["rationale"](), 3)
    parsed = parse_rationale(shape.replace("(the rationale)", RATIONALE))
    assert (parsed.rationale, parsed.reason) == (RATIONALE, None)


def _judge_shape(reply_format: str, n_lines: int) -> str:
    """The reply shape a judge prompt asks for: the rubric's closing lines."""
    return "\n".join(judge.rubric(reply_format).splitlines()[-n_lines:])


def test_judge_prompt_shape_parses_when_filled_in() -> None:
    shape = _judge_shape("free_text", 6)
    ratings = {**dict.fromkeys(CRITERIA, "Perfect"), "concept_coverage": "Acceptable"}
    lines = shape.splitlines()
    filled = [
        line.replace("<Perfect|Acceptable|Bad>", ratings[c]).replace("<reason>", "looks fine")
        for c, line in zip(CRITERIA, lines[:5], strict=True)
    ]
    reply = "\n".join([*filled, lines[5].replace("<perfect|acceptable|bad>", "perfect")])
    parsed = parse_judgement(reply)
    assert parsed.verdict == "perfect" and parsed.reason is None
    assert parsed.ratings == {c: r.lower() for c, r in ratings.items()}


def test_judge_prompt_shape_echoed_unfilled_is_not_a_verdict() -> None:
    parsed = parse_judgement(_judge_shape("free_text", 6))
    assert parsed.verdict is None and parsed.ratings == dict.fromkeys(CRITERIA)


def test_judge_schema_prompt_shape_parses_when_filled_in() -> None:
    shape = _judge_shape("schema", 8)
    assert shape.startswith("{") and shape.endswith("}")
    reply = shape.replace("<one sentence>", "Looks fine.").replace(
        "<Perfect|Acceptable|Bad>", "Perfect"
    )
    parsed = parse_judgement_json(reply)
    assert (parsed.verdict, parsed.reason) == ("perfect", None)
    assert parse_judgement_json(shape).verdict is None  # echoed unfilled: no verdict


def test_concept_prompt_shape_parses_when_filled_in() -> None:
    five = ("Parity", "Pigeonhole principle", "Vieta's formulas", "AM-GM", "Euler's theorem")
    lines = _requested_shape(BUILDERS["concepts"](), 5).splitlines()
    assert lines[2] == "..."
    reply_lines = [f"{i}. {c}" for i, c in enumerate(five, 1)]
    reply = "\n".join([*reply_lines, lines[-1].split(":")[0] + ": HMMT-Nov"])
    parsed = parse_concepts(reply, k_min=5)
    assert (parsed.concepts, parsed.level, parsed.reason) == (five, "HMMT-Nov", None)


def test_concept_prompt_shape_echoed_unfilled_has_no_level() -> None:
    parsed = parse_concepts(_requested_shape(BUILDERS["concepts"](), 5), k_min=5)
    assert parsed.level is None and parsed.reason is not None


ALL_COMBOS = list(itertools.product(RATINGS, repeat=len(CRITERIA)))


@pytest.mark.parametrize("combo", ALL_COMBOS, ids=["-".join(c) for c in ALL_COMBOS])
def test_format_judgement_round_trips_every_rating_combination(combo: tuple[str, ...]) -> None:
    ratings = dict(zip(CRITERIA, combo, strict=True))
    verdict = verdict_from_ratings(ratings)
    parsed = parse_judgement(judge.format_judgement(ratings, verdict))
    assert (parsed.verdict, parsed.source, parsed.reason) == (verdict, SOURCE_VERDICT_LINE, None)
    assert parsed.ratings == ratings


@pytest.mark.parametrize(
    ("ratings", "justifications", "verdict"),
    [
        (
            {**dict.fromkeys(CRITERIA, "perfect"), "solvability": "bad"},
            {"solvability": "not perfect: the answer is not unique", "format": "Perfect."},
            "bad",
        ),
        (
            dict.fromkeys(CRITERIA, "acceptable"),
            dict.fromkeys(CRITERIA, "acceptable, though a perfect version is easy to imagine"),
            "acceptable",
        ),
        (dict.fromkeys(CRITERIA, "perfect"), {"format": "Verdict: bad would be unfair"}, "perfect"),
    ],
    ids=["bad_with_perfect_words", "acceptable_with_perfect_words", "verdict_word_in_reason"],
)
def test_format_judgement_with_justifications_round_trips(
    ratings: dict[str, str], justifications: dict[str, str], verdict: str
) -> None:
    parsed = parse_judgement(judge.format_judgement(ratings, verdict, justifications))
    assert (parsed.verdict, parsed.reason) == (verdict, None)
    assert parsed.ratings == ratings


def test_format_judgement_contradiction_is_caught() -> None:
    ratings = {**dict.fromkeys(CRITERIA, "perfect"), "factual_accuracy": "bad"}
    parsed = parse_judgement(judge.format_judgement(ratings, "perfect"))
    assert (parsed.verdict, parsed.reason) == ("bad", REASON_JUDGE_CONTRADICTORY)


def test_format_judgement_shape() -> None:
    text = judge.format_judgement({c: "Perfect" for c in CRITERIA}, "perfect")
    lines = text.splitlines()
    assert lines[0] == "Format: Perfect - " + judge.DEFAULT_JUSTIFICATIONS["perfect"]
    assert lines[-1] == "Verdict: perfect" and len(lines) == 6


@pytest.mark.parametrize(
    ("ratings", "verdict"),
    [
        ({**dict.fromkeys(CRITERIA, "perfect"), "format": "great"}, "perfect"),
        (dict.fromkeys(CRITERIA, "perfect"), "excellent"),
    ],
)
def test_format_judgement_rejects_unknown_values(ratings: dict[str, str], verdict: str) -> None:
    with pytest.raises(ValueError):
        judge.format_judgement(ratings, verdict)
