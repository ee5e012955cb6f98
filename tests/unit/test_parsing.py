"""Tables of (model reply, expected parse) for the draft, rationale, judge and concept parsers."""

from __future__ import annotations

import random

import pytest

from promptcot_ray.parsing import (
    SOURCE_RATINGS,
    SOURCE_VERDICT_LINE,
    match_level,
    parse_concepts,
    parse_draft,
    parse_judgement,
    parse_rationale,
    reconcile_verdict,
    verdict_from_ratings,
)
from promptcot_ray.prompts.generator import format_completion
from promptcot_ray.records import (
    CRITERIA,
    REASON_CONCEPTS_EMPTY,
    REASON_CONCEPTS_TOO_FEW,
    REASON_DRAFT_EMPTY,
    REASON_DRAFT_MISSING_BOTH,
    REASON_DRAFT_MISSING_PROBLEM,
    REASON_DRAFT_MISSING_RATIONALE,
    REASON_JUDGE_CONTRADICTORY,
    REASON_JUDGE_EMPTY,
    REASON_JUDGE_MISSING_CRITERION,
    REASON_JUDGE_NO_RATINGS,
    REASON_JUDGE_UNKNOWN_RATING,
    REASON_JUDGE_UNPARSEABLE,
    REASON_RATIONALE_EMPTY,
    REASON_RATIONALE_MISSING,
)

# --- drafts ----------------------------------------------------------------------------------

WELL_FORMED = """<!-- BEGIN RATIONALE -->
Combine Vieta's formulas with the AM-GM inequality; AIME needs an integer answer.
<!-- END RATIONALE -->

<!-- BEGIN PROBLEM -->
Let $a, b, c$ be the roots of $x^3 - 12x^2 + px - 48 = 0$. Find $p$.
<!-- END PROBLEM -->"""
RATIONALE = "Combine Vieta's formulas with the AM-GM inequality; AIME needs an integer answer."
PROBLEM = "Let $a, b, c$ be the roots of $x^3 - 12x^2 + px - 48 = 0$. Find $p$."

DRAFT_CASES = [
    ("well_formed", WELL_FORMED, RATIONALE, PROBLEM, None),
    (
        "odd_spacing_and_case",
        f"<!--begin rationale-->{RATIONALE}<!--  End Rationale -->\n"
        f"<!--BEGIN_PROBLEM-->\n{PROBLEM}\n<!-- end   problem-->",
        RATIONALE,
        PROBLEM,
        None,
    ),
    (
        "text_around",
        f"Sure! Here is my design.\n\n{WELL_FORMED}\n\nI hope this problem works well.",
        RATIONALE,
        PROBLEM,
        None,
    ),
    ("code_fenced", f"```markdown\n{WELL_FORMED}\n```", RATIONALE, PROBLEM, None),
    (
        "fence_inside_problem_block",
        f"<!-- BEGIN RATIONALE -->\n{RATIONALE}\n<!-- END RATIONALE -->\n"
        f"<!-- BEGIN PROBLEM -->\n```latex\n{PROBLEM}\n```\n<!-- END PROBLEM -->",
        RATIONALE,
        PROBLEM,
        None,
    ),
    (
        "format_restated_before_answer",
        "The format is <!-- BEGIN RATIONALE --> ... <!-- END RATIONALE --> then "
        "<!-- BEGIN PROBLEM --> ... <!-- END PROBLEM -->. Now my answer:\n" + WELL_FORMED,
        RATIONALE,
        PROBLEM,
        None,
    ),
    (
        "missing_rationale_tags",
        f"{RATIONALE}\n<!-- BEGIN PROBLEM -->\n{PROBLEM}\n<!-- END PROBLEM -->",
        None,
        PROBLEM,
        REASON_DRAFT_MISSING_RATIONALE,
    ),
    (
        "missing_problem_tags",
        f"<!-- BEGIN RATIONALE -->\n{RATIONALE}\n<!-- END RATIONALE -->\n{PROBLEM}",
        RATIONALE,
        None,
        REASON_DRAFT_MISSING_PROBLEM,
    ),
    ("no_tags_at_all", f"{RATIONALE}\n\n{PROBLEM}", None, None, REASON_DRAFT_MISSING_BOTH),
    (
        "truncated_problem_no_end",
        f"<!-- BEGIN RATIONALE -->\n{RATIONALE}\n<!-- END RATIONALE -->\n"
        "<!-- BEGIN PROBLEM -->\nLet $a, b, c$ be the roots of",
        RATIONALE,
        None,
        REASON_DRAFT_MISSING_PROBLEM,
    ),
    (
        "truncated_rationale_no_end",
        f"<!-- BEGIN RATIONALE -->\n{RATIONALE} Next I will",
        None,
        None,
        REASON_DRAFT_MISSING_BOTH,
    ),
    (
        "truncation_not_rescued_by_earlier_example",
        "Format example: <!-- BEGIN RATIONALE -->x<!-- END RATIONALE -->"
        "<!-- BEGIN PROBLEM -->y<!-- END PROBLEM -->\nAnswer:\n"
        f"<!-- BEGIN RATIONALE -->{RATIONALE}<!-- END RATIONALE -->"
        "<!-- BEGIN PROBLEM -->Let $a$ be",
        RATIONALE,
        None,
        REASON_DRAFT_MISSING_PROBLEM,
    ),
    (
        "unclosed_begin_does_not_swallow_next_block",
        f"<!-- BEGIN PROBLEM -->draft that was abandoned\n<!-- BEGIN RATIONALE -->{RATIONALE}"
        f"<!-- END RATIONALE --><!-- BEGIN PROBLEM -->{PROBLEM}<!-- END PROBLEM -->",
        RATIONALE,
        PROBLEM,
        None,
    ),
    (
        "restarted_rationale_block",
        f"<!-- BEGIN RATIONALE -->First attempt, abandoned.\n<!-- BEGIN RATIONALE -->{RATIONALE}"
        f"<!-- END RATIONALE --><!-- BEGIN PROBLEM -->{PROBLEM}<!-- END PROBLEM -->",
        RATIONALE,
        PROBLEM,
        None,
    ),
    (
        "empty_problem_block",
        f"<!-- BEGIN RATIONALE -->{RATIONALE}<!-- END RATIONALE -->"
        "<!-- BEGIN PROBLEM -->\n   \n<!-- END PROBLEM -->",
        RATIONALE,
        None,
        REASON_DRAFT_MISSING_PROBLEM,
    ),
    (
        "problem_before_rationale",
        f"<!-- BEGIN PROBLEM -->{PROBLEM}<!-- END PROBLEM -->"
        f"<!-- BEGIN RATIONALE -->{RATIONALE}<!-- END RATIONALE -->",
        RATIONALE,
        None,
        REASON_DRAFT_MISSING_PROBLEM,
    ),
    (
        "thinking_then_answer",
        f"<think>Maybe <!-- BEGIN RATIONALE -->?</think>{WELL_FORMED}",
        RATIONALE,
        PROBLEM,
        None,
    ),
    (
        "truncated_while_thinking",
        f"<think>Plan:\n{WELL_FORMED}",
        None,
        None,
        REASON_DRAFT_MISSING_BOTH,
    ),
    ("empty_string", "", None, None, REASON_DRAFT_EMPTY),
    ("whitespace_only", " \n\t ", None, None, REASON_DRAFT_EMPTY),
    ("none", None, None, None, REASON_DRAFT_EMPTY),
]


@pytest.mark.parametrize(
    ("text", "rationale", "problem", "reason"),
    [case[1:] for case in DRAFT_CASES],
    ids=[case[0] for case in DRAFT_CASES],
)
def test_parse_draft(
    text: str | None, rationale: str | None, problem: str | None, reason: str | None
) -> None:
    parsed = parse_draft(text)
    assert (parsed.rationale, parsed.problem, parsed.reason) == (rationale, problem, reason)


@pytest.mark.parametrize(
    ("rationale", "problem"),
    [
        (RATIONALE, PROBLEM),
        ("Line one.\n\nLine two with $$\\sum_{k=1}^n k$$.", "Prove that $n^2 \\ge n$."),
        ("  padded  ", "\nAlso padded\n"),
    ],
)
def test_format_completion_round_trips(rationale: str, problem: str) -> None:
    parsed = parse_draft(format_completion(rationale, problem))
    assert (parsed.rationale, parsed.problem, parsed.reason) == (
        rationale.strip(),
        problem.strip(),
        None,
    )


@pytest.mark.parametrize(
    ("text", "rationale", "reason"),
    [
        (f"<!-- BEGIN RATIONALE -->\n{RATIONALE}\n<!-- END RATIONALE -->", RATIONALE, None),
        (f"Here it is:\n<!--begin rationale-->{RATIONALE}<!--end rationale-->", RATIONALE, None),
        (f"<!-- BEGIN RATIONALE -->\n{RATIONALE}", None, REASON_RATIONALE_MISSING),
        ("<!-- BEGIN RATIONALE --><!-- END RATIONALE -->", None, REASON_RATIONALE_MISSING),
        (RATIONALE, None, REASON_RATIONALE_MISSING),
        ("", None, REASON_RATIONALE_EMPTY),
        (None, None, REASON_RATIONALE_EMPTY),
    ],
)
def test_parse_rationale(text: str | None, rationale: str | None, reason: str | None) -> None:
    parsed = parse_rationale(text)
    assert (parsed.rationale, parsed.reason) == (rationale, reason)


# --- judgements ------------------------------------------------------------------------------

ALL_PERFECT = dict.fromkeys(CRITERIA, "perfect")

WELL_FORMED_JUDGEMENT = """The problem combines both concepts naturally.
Format: Perfect - a clean statement with no answer leaked.
Factual accuracy: Perfect - the polynomial data are consistent.
Difficulty alignment: Acceptable - slightly easy for AIME.
Concept coverage: Perfect - both concepts are needed.
Solvability: Perfect - the answer is a unique integer.
Verdict: perfect"""

BAD_WITH_PERFECT_PROSE = """The statement reads perfectly and looks like a perfect AIME problem.
Format: Perfect - perfect formatting.
Factual accuracy: Perfect - correct.
Difficulty alignment: Perfect - right level.
Concept coverage: Acceptable - one concept is peripheral.
Solvability: Bad: not perfect, the system has infinitely many solutions.
Verdict: bad"""

RATINGS_ONLY_PERFECT = """1. **Format**: Perfect - fine
2. **Factual Accuracy**: Perfect - fine
3. **Difficulty Alignment**: Acceptable - a bit easy
4. **Concept Coverage**: Perfect - all used
5. **Solvability**: Perfect - unique answer"""

RATINGS_ONLY_ACCEPTABLE = """- format: Acceptable - wordy
- factual-accuracy: Perfect - ok
- difficulty-alignment: Acceptable - easy
- concept-coverage: Perfect - ok
- solvability: Perfect - ok"""

RATINGS_ONLY_BAD = """| Criterion | Rating | Justification |
|---|---|---|
| Format | Perfect | clean |
| Factual accuracy | Bad | the triangle cannot exist |
| Difficulty alignment | Perfect | fits |
| Concept coverage | Perfect | fits |
| Solvability | Acceptable | ambiguous wording |"""

RATINGS_ALL_PERFECT = """Format: Perfect
Factual accuracy: Perfect
Difficulty alignment: Perfect
Concept coverage: Perfect
Solvability: Perfect"""

# (id, reply, verdict, source, reason)
JUDGE_CASES = [
    ("well_formed", WELL_FORMED_JUDGEMENT, "perfect", SOURCE_VERDICT_LINE, None),
    # A stated verdict is read in many spellings, but only checked against the ratings:
    # source is SOURCE_VERDICT_LINE only when the verdict line was read and agrees.
    *(
        (name, ratings + "\n" + line, verdict, SOURCE_VERDICT_LINE, None)
        for name, ratings, line, verdict in [
            ("verdict_upper_case", RATINGS_ONLY_ACCEPTABLE, "VERDICT: ACCEPTABLE", "acceptable"),
            ("verdict_lower_case", RATINGS_ONLY_BAD, "verdict: bad", "bad"),
            ("markdown_bold_verdict", RATINGS_ONLY_BAD, "\n**Final verdict:** bad", "bad"),
            ("bold_value", RATINGS_ALL_PERFECT, "Final Verdict: **Perfect**", "perfect"),
            (
                "dash_separator",
                RATINGS_ONLY_ACCEPTABLE,
                "Overall verdict - ACCEPTABLE",
                "acceptable",
            ),
            ("brackets_and_code", RATINGS_ONLY_ACCEPTABLE, "`Verdict: [Acceptable]`", "acceptable"),
            ("heading_then_value", RATINGS_ONLY_BAD, "## Final Verdict\n\n**Bad**", "bad"),
            (
                "prose_verdict_is",
                RATINGS_ONLY_ACCEPTABLE,
                "The verdict is acceptable.",
                "acceptable",
            ),
        ]
    ),
    ("verdict_alone_is_not_a_judgement", "Verdict: perfect", None, None, REASON_JUDGE_NO_RATINGS),
    ("perfect_in_bad_prose", BAD_WITH_PERFECT_PROSE, "bad", SOURCE_VERDICT_LINE, None),
    ("derived_perfect", RATINGS_ONLY_PERFECT, "perfect", SOURCE_RATINGS, None),
    ("derived_acceptable", RATINGS_ONLY_ACCEPTABLE, "acceptable", SOURCE_RATINGS, None),
    ("derived_bad_from_table", RATINGS_ONLY_BAD, "bad", SOURCE_RATINGS, None),
    (
        "text_after_verdict",
        WELL_FORMED_JUDGEMENT + "\n\nNote: a bolder version could be harder. Thanks!",
        "perfect",
        SOURCE_VERDICT_LINE,
        None,
    ),
    (
        "several_verdicts_the_strictest_counts",
        RATINGS_ALL_PERFECT + "\nVerdict: bad\nOn reflection it is fine.\nVerdict: perfect",
        "bad",
        SOURCE_VERDICT_LINE,
        REASON_JUDGE_CONTRADICTORY,
    ),
    (
        "verdict_perfect_but_solvability_bad",
        WELL_FORMED_JUDGEMENT.replace("Solvability: Perfect", "Solvability: Bad"),
        "bad",
        SOURCE_RATINGS,
        REASON_JUDGE_CONTRADICTORY,
    ),
    (
        "verdict_perfect_but_only_acceptable_ratings",
        RATINGS_ONLY_ACCEPTABLE + "\nVerdict: perfect",
        "acceptable",
        SOURCE_RATINGS,
        REASON_JUDGE_CONTRADICTORY,
    ),
    (
        "verdict_bad_but_all_ratings_perfect",
        RATINGS_ALL_PERFECT + "\nVerdict: bad",
        "bad",
        SOURCE_VERDICT_LINE,
        REASON_JUDGE_CONTRADICTORY,
    ),
    (
        "partial_ratings_with_bad_are_bad_anyway",
        "Solvability: Bad - underdetermined\nVerdict: perfect",
        "bad",
        SOURCE_RATINGS,
        REASON_JUDGE_MISSING_CRITERION,
    ),
    (
        "partial_ratings_give_no_verdict",
        "Format: Acceptable - wordy\nVerdict: acceptable",
        None,
        None,
        REASON_JUDGE_MISSING_CRITERION,
    ),
    ("only_perfect_exclamation", "Perfect!", None, None, REASON_JUDGE_UNPARSEABLE),
    (
        "perfect_in_prose_only",
        "This is a perfect problem, I would rate it perfect overall.",
        None,
        None,
        REASON_JUDGE_UNPARSEABLE,
    ),
    (
        "restated_format_only",
        "Verdict: <perfect|acceptable|bad>\nSolvability: Perfect/Acceptable/Bad",
        None,
        None,
        REASON_JUDGE_UNPARSEABLE,
    ),
    ("not_perfect_verdict", "Verdict: not perfect", None, None, REASON_JUDGE_UNKNOWN_RATING),
    (
        "four_ratings_no_verdict",
        "\n".join(RATINGS_ONLY_PERFECT.splitlines()[:4]),
        None,
        None,
        REASON_JUDGE_MISSING_CRITERION,
    ),
    ("gibberish", "asdf qwer ;; 42 ]]>< zzz", None, None, REASON_JUDGE_UNPARSEABLE),
    (
        "thinking_only_truncated",
        "<think>Verdict: perfect, surely",
        None,
        None,
        REASON_JUDGE_UNPARSEABLE,
    ),
    (
        "after_thinking",
        "<think>Solvability: Bad?\nVerdict: bad?</think>\n"
        + RATINGS_ONLY_ACCEPTABLE
        + "\nVerdict: acceptable",
        "acceptable",
        SOURCE_VERDICT_LINE,
        None,
    ),
    ("empty", "", None, None, REASON_JUDGE_EMPTY),
    ("none", None, None, None, REASON_JUDGE_EMPTY),
]


@pytest.mark.parametrize(
    ("text", "verdict", "source", "reason"),
    [case[1:] for case in JUDGE_CASES],
    ids=[case[0] for case in JUDGE_CASES],
)
def test_parse_judgement(
    text: str | None, verdict: str | None, source: str | None, reason: str | None
) -> None:
    parsed = parse_judgement(text)
    assert (parsed.verdict, parsed.source, parsed.reason) == (verdict, source, reason)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            BAD_WITH_PERFECT_PROSE,
            {
                "format": "perfect",
                "factual_accuracy": "perfect",
                "difficulty_alignment": "perfect",
                "concept_coverage": "acceptable",
                "solvability": "bad",
            },
        ),
        (
            RATINGS_ONLY_BAD,
            {
                "format": "perfect",
                "factual_accuracy": "bad",
                "difficulty_alignment": "perfect",
                "concept_coverage": "perfect",
                "solvability": "acceptable",
            },
        ),
        (
            "Solvability: the problem is perfect as stated\nFormat: Bad - leaks the answer",
            {**dict.fromkeys(CRITERIA), "format": "bad"},
        ),
        (  # rated twice, differently: neither rating is believed (judge_conflicting_ratings)
            "Solvability: Perfect\nSolvability: Acceptable - on second thought",
            dict.fromkeys(CRITERIA),
        ),
        ("Perfect!", dict.fromkeys(CRITERIA)),
    ],
    ids=["bad_reply", "table", "prose_is_not_a_rating", "rated_twice_differently", "no_ratings"],
)
def test_parse_judgement_ratings(text: str, expected: dict[str, str | None]) -> None:
    assert parse_judgement(text).ratings == expected


@pytest.mark.parametrize(
    ("ratings", "verdict"),
    [
        (ALL_PERFECT, "perfect"),
        ({**ALL_PERFECT, "format": "acceptable"}, "perfect"),
        ({**ALL_PERFECT, "format": "acceptable", "concept_coverage": "acceptable"}, "acceptable"),
        ({**ALL_PERFECT, "solvability": "acceptable"}, "acceptable"),
        ({**ALL_PERFECT, "factual_accuracy": "acceptable"}, "acceptable"),
        ({**ALL_PERFECT, "difficulty_alignment": "bad"}, "bad"),
        (dict.fromkeys(CRITERIA, "acceptable"), "acceptable"),
        ({**dict.fromkeys(CRITERIA, "acceptable"), "format": "bad"}, "bad"),
        ({c: "Perfect" for c in CRITERIA}, "perfect"),
    ],
)
def test_verdict_from_ratings(ratings: dict[str, str], verdict: str) -> None:
    assert verdict_from_ratings(ratings) == verdict


@pytest.mark.parametrize(
    "ratings",
    [{**ALL_PERFECT, "solvability": "great"}, {c: "perfect" for c in CRITERIA[:4]}],
)
def test_verdict_from_ratings_rejects_bad_input(ratings: dict[str, str]) -> None:
    with pytest.raises((ValueError, KeyError)):
        verdict_from_ratings(ratings)


@pytest.mark.parametrize(
    ("stated", "ratings", "verdict", "contradictory"),
    [
        (None, ALL_PERFECT, "perfect", False),
        ("perfect", ALL_PERFECT, "perfect", False),
        ("Perfect", {**ALL_PERFECT, "solvability": "acceptable"}, "acceptable", True),
        ("perfect", {**ALL_PERFECT, "factual_accuracy": "bad"}, "bad", True),
        ("bad", ALL_PERFECT, "bad", True),
        ("acceptable", {**ALL_PERFECT, "format": "bad"}, "bad", True),
        ("acceptable", dict.fromkeys(CRITERIA, "acceptable"), "acceptable", False),
    ],
    ids=[
        "no_stated",
        "agrees",
        "laxer_loses",
        "laxer_loses_to_bad",
        "stricter_wins",
        "acceptable_vs_bad",
        "agrees_acceptable",
    ],
)
def test_reconcile_verdict_keeps_the_stricter(
    stated: str | None, ratings: dict[str, str], verdict: str, contradictory: bool
) -> None:
    assert reconcile_verdict(stated, ratings) == (verdict, contradictory)


@pytest.mark.parametrize(
    ("stated", "ratings"),
    [("great", ALL_PERFECT), ("perfect", {**ALL_PERFECT, "format": "poor"})],
)
def test_reconcile_verdict_rejects_unknown_words(stated: str, ratings: dict[str, str]) -> None:
    with pytest.raises(ValueError):
        reconcile_verdict(stated, ratings)


# --- concept lists ---------------------------------------------------------------------------

FIVE = (
    "Vieta's formulas",
    "AM-GM inequality",
    "Modular arithmetic",
    "Pythagorean theorem",
    "Inclusion-exclusion principle",
)

CHATTY_REPLY = """Based on the problem, these are the foundational concepts it tests:

1. **Vieta's Formulas**: relations between the roots and coefficients of a polynomial.
2. **AM-GM Inequality**: the arithmetic mean is at least the geometric mean.
3. **Polynomial factorization**
4. **Symmetric sums**: expressing power sums through elementary symmetric polynomials.
5. **Integer roots**: the rational root theorem.

**Level:** AIME (American Invitational Mathematics Examination)"""
CHATTY_CONCEPTS = (
    "Vieta's Formulas: relations between the roots and coefficients of a polynomial",
    "AM-GM Inequality: the arithmetic mean is at least the geometric mean",
    "Polynomial factorization",
    "Symmetric sums: expressing power sums through elementary symmetric polynomials",
    "Integer roots: the rational root theorem",
)

# (id, reply, concepts, level, reason) with k_min=5
CONCEPT_CASES = [
    ("chatty_bold_numbered", CHATTY_REPLY, CHATTY_CONCEPTS, "AIME", None),
    (
        "numbered_dots",
        "\n".join(f"{i}. {c}" for i, c in enumerate(FIVE, 1)) + "\nLevel: AIME",
        FIVE,
        "AIME",
        None,
    ),
    ("numbered_parens", "\n".join(f"{i}) {c}." for i, c in enumerate(FIVE, 1)), FIVE, None, None),
    (
        "dash_bullets",
        "Concepts:\n" + "\n".join(f"- {c}" for c in FIVE) + "\nLevel: usamo",
        FIVE,
        "USAMO",
        None,
    ),
    ("star_bullets", "\n".join(f"* {c}" for c in FIVE), FIVE, None, None),
    ("dot_bullets", "\n".join(f"\u2022 {c}" for c in FIVE), FIVE, None, None),
    (
        "bold_items",
        "\n".join(f"{i}. **{c}**" for i, c in enumerate(FIVE, 1)) + "\n**Level:** HMMT February",
        FIVE,
        "HMMT-Feb",
        None,
    ),
    ("knowledge_point_prefix", "\n".join(f"Knowledge Point: {c}" for c in FIVE), FIVE, None, None),
    (
        "concept_n_prefix",
        "\n".join(f"Concept {i}: {c}" for i, c in enumerate(FIVE, 1))
        + "\nDifficulty level: HMMT Nov",
        FIVE,
        "HMMT-Nov",
        None,
    ),
    (
        "numbered_and_prefixed",
        "\n".join(f"{i}. Foundational concept: {c}" for i, c in enumerate(FIVE, 1)),
        FIVE,
        None,
        None,
    ),
    ("python_list", f"Here they are: {list(FIVE)!r}\nLevel: AMC 12", FIVE, "AMC12", None),
    ("json_list", '["' + '", "'.join(FIVE) + '"]', FIVE, None, None),
    (
        "json_object",
        '{"concepts": ["' + '", "'.join(FIVE) + '"], "level": "usa jmo"}',
        FIVE,
        "USAJMO",
        None,
    ),
    (
        "list_with_brackets_inside",
        '["Closed interval [a, b]", "Rolle\'s theorem", "x", "y", "z"]',
        ("Closed interval [a, b]", "Rolle's theorem", "x", "y", "z"),
        None,
        None,
    ),
    (
        "nested_explanations_skipped",
        "\n".join(f"{i}. {c}\n   - why it matters" for i, c in enumerate(FIVE, 1)),
        FIVE,
        None,
        None,
    ),
    (
        "numbered_level_line",
        "\n".join(f"{i}. {c}" for i, c in enumerate(FIVE, 1)) + "\n6. Level: aime",
        FIVE,
        "AIME",
        None,
    ),
    ("plain_lines", "\n".join(FIVE) + "\nLevel: USOJMO", FIVE, "USOJMO", None),
    ("duplicates_dropped", "\n".join(f"- {c}" for c in (*FIVE, FIVE[0].upper())), FIVE, None, None),
    (
        "too_few",
        "1. Vieta's formulas\n2. AM-GM inequality\nLevel: AIME",
        FIVE[:2],
        "AIME",
        REASON_CONCEPTS_TOO_FEW,
    ),
    (
        "over_long_item_dropped",
        "\n".join(f"- {c}" for c in FIVE[:4]) + "\n- " + "x" * 201,
        FIVE[:4],
        None,
        REASON_CONCEPTS_TOO_FEW,
    ),
    (
        "empty_items_dropped",
        "1. \n2. **  **\n" + "\n".join(f"- {c}" for c in FIVE[:3]),
        FIVE[:3],
        None,
        REASON_CONCEPTS_TOO_FEW,
    ),
    (
        "placeholder_lines_dropped",
        "\n".join(f"- {c}" for c in FIVE) + "\n- ...\n- ---",
        FIVE,
        None,
        None,
    ),
    (
        "prose_only",
        "I cannot identify the concepts.",
        ("I cannot identify the concepts",),
        None,
        REASON_CONCEPTS_TOO_FEW,
    ),
    ("empty", "", (), None, REASON_CONCEPTS_EMPTY),
    ("none", None, (), None, REASON_CONCEPTS_EMPTY),
]


@pytest.mark.parametrize(
    ("text", "concepts", "level", "reason"),
    [case[1:] for case in CONCEPT_CASES],
    ids=[case[0] for case in CONCEPT_CASES],
)
def test_parse_concepts(
    text: str | None, concepts: tuple[str, ...], level: str | None, reason: str | None
) -> None:
    parsed = parse_concepts(text, k_min=5)
    assert (parsed.concepts, parsed.level, parsed.reason) == (concepts, level, reason)


def test_parse_concepts_max_chars_is_configurable() -> None:
    parsed = parse_concepts("- Parity\n- Vieta's formulas\n- Pigeonhole", k_min=1, max_chars=10)
    assert parsed.concepts == ("Parity", "Pigeonhole")


@pytest.mark.parametrize(
    ("value", "level"),
    [
        ("AIME", "AIME"),
        ("aime", "AIME"),
        ("HMMT February", "HMMT-Feb"),
        ("hmmt-feb", "HMMT-Feb"),
        ("HMMT (November)", "HMMT-Nov"),
        ("AMC 12", "AMC12"),
        ("USAJMO", "USAJMO"),
        ("usamo.", "USAMO"),
        ("USOMO", "USOMO"),
        ("IMO", None),
        ("HMMT", None),
        ("<one of AMC12, HMMT-Nov, AIME>", None),
        ("", None),
    ],
)
def test_match_level(value: str, level: str | None) -> None:
    assert match_level(value) == level


# --- totality: no reply text makes a parser raise, hang, or wrongly say perfect ----------------

PATHOLOGICAL = {
    "long_space_run_after_criterion": "Format" + " " * 20000 + "x",
    "long_space_run_after_prefix": "Concept #" + " " * 20000 + "x",
    "long_space_run_after_verdict": "Verdict is" + " " * 20000 + "x",
    "repeated_list_openers": "['a', " * 20000,
    "repeated_tags": "<!-- BEGIN RATIONALE -->" * 20000,
    "repeated_escapes": '["' + '\\"' * 20000,
    "nul_and_unicode": "\x00Verdict:\u00a0\u2014 perfect\u2028",
}


@pytest.mark.timeout(10)
@pytest.mark.parametrize("text", list(PATHOLOGICAL.values()), ids=list(PATHOLOGICAL))
def test_parsers_are_total_and_fast_on_pathological_text(text: str) -> None:
    assert parse_draft(text).reason == REASON_DRAFT_MISSING_BOTH
    assert parse_rationale(text).reason == REASON_RATIONALE_MISSING
    assert parse_judgement(text).verdict in (None, "perfect")  # only the last case has one
    assert parse_concepts(text, k_min=5).reason == REASON_CONCEPTS_TOO_FEW


FUZZ_TOKENS = (
    "Verdict",
    "verdict:",
    ": ",
    " ",
    "\n",
    "perfect",
    "Perfect",
    "Bad",
    "acceptable",
    "not ",
    "**",
    "|",
    "-",
    "1. ",
    "Format",
    "Factual accuracy",
    "Difficulty alignment",
    "Concept coverage",
    "Solvability",
    "<think>",
    "</think>",
    "<",
    ">",
    "/",
    " or ",
    "Final ",
)


def test_random_judge_replies_never_say_perfect_against_their_ratings() -> None:
    rng = random.Random(1234)
    for _ in range(5000):
        text = "".join(rng.choice(FUZZ_TOKENS) for _ in range(rng.randint(0, 80)))
        parsed = parse_judgement(text)
        assert parsed.verdict is not None or parsed.reason is not None
        if parsed.reason in (None, REASON_JUDGE_CONTRADICTORY):
            derived = verdict_from_ratings(parsed.ratings)  # raises unless all five are rated
            assert parsed.verdict == derived or parsed.reason == REASON_JUDGE_CONTRADICTORY
        else:  # fails closed: a verdict only where the ratings force "bad"
            assert parsed.verdict in (None, "bad")
        assert parsed.verdict != "perfect" or verdict_from_ratings(parsed.ratings) == "perfect"
