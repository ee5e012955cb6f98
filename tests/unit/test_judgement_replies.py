"""Judge replies written the way instruct models write them, and the verdict each must get.

Every reply here is typed by hand in the layouts Llama/Qwen instruct models and the PromptCoT
authors' release use (criterion headings, `Rating:` lines, tables, `Final Judgement:`), not
rendered by `prompts.judge.format_judgement`. The first block holds the fail-open cases of
issue #15: each ends in a perfect verdict that its ratings do not support.
"""

from __future__ import annotations

import pytest

from promptcot_ray import records as R
from promptcot_ray.parsing import SOURCE_RATINGS, SOURCE_VERDICT_LINE, parse_judgement
from promptcot_ray.records import CRITERIA

CONFLICTING = R.REASON_JUDGE_CONFLICTING_RATINGS
CONTRADICTORY = R.REASON_JUDGE_CONTRADICTORY
MISSING = R.REASON_JUDGE_MISSING_CRITERION
NO_RATINGS = R.REASON_JUDGE_NO_RATINGS
UNKNOWN = R.REASON_JUDGE_UNKNOWN_RATING
UNPARSEABLE = R.REASON_JUDGE_UNPARSEABLE

HEADINGS_BAD_FACTS = """\
### Format
The problem statement is concise and kept apart from the design rationale.
Rating: Perfect

### Factual Accuracy
The problem asks for the area of a triangle with sides 3, 4 and 9, which violates the \
triangle inequality, so no such triangle exists.
Rating: Bad

### Difficulty Alignment
Rating: Perfect

### Concept Coverage
Heron's formula and the triangle inequality are both central.
Rating: Perfect

### Solvability
Rating: Perfect

Final Judgement: Perfect"""

TABLE_BAD_FACTS = """\
Here is my assessment of the generated problem.

| Criterion | Justification | Rating |
|-----------|---------------|--------|
| Format | Clean, self-contained statement | Perfect |
| Factual accuracy | The stated radius contradicts the given chord length | Bad |
| Difficulty alignment | Appropriate for HMMT February | Perfect |
| Concept coverage | Uses power of a point and similar triangles | Perfect |
| Solvability | A unique answer follows once the data are fixed | Perfect |

Verdict: perfect"""

ONE_LINE_BAD_FACTS = (
    "Format: Perfect, Factual accuracy: Bad, Difficulty alignment: Perfect, Concept coverage: "
    "Perfect, Solvability: Perfect. Verdict: perfect"
)


def _lines(facts: str, verdict: str = "Verdict: perfect") -> str:
    """A bulleted reply whose factual-accuracy value is `facts` (other criteria Perfect)."""
    return f"""\
- Format: Perfect - the statement is clean and leaks nothing.
- Factual accuracy: {facts}
- Difficulty alignment: Perfect - right for AIME.
- Concept coverage: Perfect - both concepts are needed.
- Solvability: Perfect - the answer is a unique integer.

{verdict}"""


QWEN_BOLD_NUMBERED = """\
Let me evaluate the problem against each criterion.

1. **Format**: Perfect - The problem is stated cleanly and contains no hint of the answer.
2. **Factual Accuracy**: Perfect - The coefficients are consistent with Vieta's relations.
3. **Difficulty Alignment**: Acceptable - On the easier side for AIME, but it needs insight.
4. **Concept Coverage**: Perfect - Both Vieta's formulas and AM-GM are essential.
5. **Solvability**: Perfect - The answer is a unique positive integer.

**Verdict:** perfect"""

AUTHORS_LAYOUT = """\
**Format**
- Analysis: The problem is a single self-contained statement; the rationale is separate.
- Rating: Perfect

**Factual Accuracy**
- Analysis: All given quantities are consistent: a 6-8-10 right triangle has inradius 2.
- Rating: Perfect

**Difficulty Alignment**
- Analysis: Combining the inradius with the angle bisector theorem suits AMC 12.
- Rating: Perfect

**Concept Coverage**
- Analysis: The angle bisector theorem is used, but the inradius is only mentioned.
- Rating: Acceptable

**Solvability**
- Analysis: The requested ratio is uniquely determined.
- Rating: Perfect

**Final Judgement:** Perfect"""

LLAMA_RATING_FOR = """\
I'll rate the problem on each of the five criteria.

**Rating for Format:** Perfect
The problem is presented in a clear and concise manner.

**Rating for Factual Accuracy:** Perfect
The modular arithmetic facts used are correct.

**Rating for Difficulty Alignment:** Acceptable
The problem may be slightly easy for USAMO.

**Rating for Concept Coverage:** Acceptable
Only one of the two listed concepts is really needed.

**Rating for Solvability:** Perfect
There is exactly one residue that works.

**Overall Verdict:** Acceptable"""

HEADING_BARE_RATING = """\
## Format
Perfect

## Factual Accuracy
Bad
The angles of the quadrilateral add up to 380 degrees.

## Difficulty Alignment
Acceptable

## Concept Coverage
Perfect

## Solvability
Acceptable

## Final Verdict
Bad"""

TRANSPOSED_TABLE = """\
| Format | Factual accuracy | Difficulty alignment | Concept coverage | Solvability |
|---|---|---|---|---|
| Perfect | Perfect | Perfect | Acceptable | Perfect |

Verdict: perfect"""

TABLE_RATING_FIRST = """\
| Rating | Criterion | Notes |
|---|---|---|
| Perfect | Format | fine |
| Perfect | Factual accuracy | checked every number |
| Acceptable | Difficulty alignment | a little easy |
| Acceptable | Concept coverage | one concept is decorative |
| Perfect | Solvability | unique answer |

Final verdict: acceptable"""

TABLE_NO_HEADER = """\
| **Format** | **Perfect** | no answer leaked |
| **Factual accuracy** | **Perfect** | consistent |
| **Difficulty alignment** | **Perfect** | fits HMMT November |
| **Concept coverage** | **Perfect** | all three concepts interact |
| **Solvability** | **Perfect** | unique answer |"""

THINK_THEN_ANSWER = """\
<think>
Hmm, is the factual accuracy bad? Factual accuracy: Bad, maybe, since 7 is not a square...
Wait, the problem says 7 is a quadratic residue mod 3, which is true. So it is fine.
</think>
Format: Perfect - clean.
Factual accuracy: Perfect - the residue claim is correct.
Difficulty alignment: Perfect - suits HMMT February.
Concept coverage: Perfect - quadratic residues and CRT are both used.
Solvability: Perfect - one answer.
Verdict: perfect"""

RESTATED_FORMAT_THEN_ANSWER = """\
I need to end with six lines, each rating followed by a justification:
Format: <Perfect|Acceptable|Bad> - <reason>
Factual accuracy: <Perfect|Acceptable|Bad> - <reason>
Verdict: <perfect|acceptable|bad>

The problem reads well, but the answer is not unique.

Format: Perfect - clean statement.
Factual accuracy: Perfect - correct facts.
Difficulty alignment: Perfect - appropriate for AIME.
Concept coverage: Perfect - uses both concepts.
Solvability: Bad - two different values of n satisfy the conditions.
Verdict: bad"""

BACKTICK_EXAMPLE_THEN_ANSWER = """\
The instructions want lines like `Factual accuracy: Perfect - reason` and a final \
"Verdict: perfect" line, so here they are.

Format: Acceptable - the rationale leaks into the statement.
Factual accuracy: Bad - the sequence cannot be both arithmetic and geometric here.
Difficulty alignment: Perfect - right level.
Concept coverage: Perfect - both concepts appear.
Solvability: Acceptable - ambiguous once the contradiction is noticed.
Verdict: bad"""

BLOCKQUOTE_EXAMPLE_ONLY = """\
The requested reply format is:

> Format: Perfect - the statement is clean
> Factual accuracy: Perfect - the facts hold
> Difficulty alignment: Perfect - right level
> Concept coverage: Perfect - concepts used
> Solvability: Perfect - unique answer
> Verdict: perfect

I cannot judge this problem because the problem text is missing."""

FENCED_ANSWER = """\
Here is my evaluation in the requested format:

```
Format: Perfect - self-contained.
Factual accuracy: Perfect - all facts correct.
Difficulty alignment: Acceptable - a bit routine for USAMO.
Concept coverage: Acceptable - generating functions are barely needed.
Solvability: Perfect - the count is determined.
Verdict: acceptable
```"""

FENCED_EXAMPLE_THEN_ANSWER = """\
The format I must follow looks like this example:

```text
Format: Perfect - ...
Factual accuracy: Perfect - ...
Difficulty alignment: Perfect - ...
Concept coverage: Perfect - ...
Solvability: Perfect - ...
Verdict: perfect
```

My evaluation:
Format: Perfect - fine.
Factual accuracy: Perfect - fine.
Difficulty alignment: Perfect - fine.
Concept coverage: Perfect - fine.
Solvability: Bad - the system has infinitely many solutions.
Verdict: bad"""

SUMMARY_DISAGREES = """\
**Format:** Perfect. The problem is well presented.
**Factual Accuracy:** Perfect. No errors.
**Difficulty Alignment:** Perfect. Suits AIME.
**Concept Coverage:** Perfect. Both concepts matter.
**Solvability:** Perfect. The answer is 42.

Summary: Format: Perfect; Solvability: Acceptable (on reflection the answer may not be unique).

Verdict: perfect"""

SUMMARY_AGREES = """\
### 1. Format
Rating: Perfect
### 2. Factual Accuracy
Rating: Perfect
### 3. Difficulty Alignment
Rating: Perfect
### 4. Concept Coverage
Rating: Acceptable
### 5. Solvability
Rating: Perfect

### Summary
| Criterion | Rating |
|---|---|
| Format | Perfect |
| Factual Accuracy | Perfect |
| Difficulty Alignment | Perfect |
| Concept Coverage | Acceptable |
| Solvability | Perfect |

Final Judgement: Perfect"""

RUBRIC_RESTATED = """\
The rubric asks:
- Format: Is the problem a clean, self-contained statement, separate from the rationale?
- Factual accuracy: Are all mathematical facts correct and mutually consistent?
- Solvability: Is the problem well-posed, with enough information for a unique answer?
Verdict rule: the verdict is perfect only if Factual accuracy and Solvability are both \
Perfect, at least two of Format, Difficulty alignment and Concept coverage are Perfect.

This is a lovely, perfect problem.
Verdict: perfect"""

TRUNCATED = """\
1. Format: Perfect - clean.
2. Factual accuracy: Perfect - correct.
3. Difficulty alignment: Perfect - suits AIME.
4. Concept coverage: Perf"""

LLAMA_CHATTY = """\
Thank you for sharing this problem. I'll go through the rubric carefully.

The problem asks for the number of ordered pairs $(a, b)$ of positive integers with \
$\\operatorname{lcm}(a, b) = 2^3 \\cdot 3^2$. The rationale says it should combine prime \
factorization with counting, which it does. The factual accuracy of the setup is fine: every \
divisor structure is possible. Solvability is perfect only if order matters, and it does.

**Evaluation:**

* **Format:** Perfect. The statement stands alone and does not include the answer.
* **Factual Accuracy:** Perfect. All claims about lcm and exponents are correct.
* **Difficulty Alignment:** Acceptable. This is closer to AMC 12 than to AIME.
* **Concept Coverage:** Perfect. Both prime factorization and counting are essential.
* **Solvability:** Perfect. The count is 35.

I hope this helps! Let me know if you want me to suggest a harder variant.

**Final Judgement:** Perfect"""

UNQUOTED_EXAMPLE_THEN_PARTIAL = """\
I will answer in this format:
Format: Perfect - ...
Factual accuracy: Perfect - ...
Difficulty alignment: Perfect - ...
Concept coverage: Perfect - ...
Solvability: Perfect - ...

Format: Perfect - the statement is clean.
Factual accuracy: Perfect - the numbers check out.
Difficulty alignment: Perfect - AIME level.
Concept coverage: Perfect - both concepts are used.
Verdict: perfect"""

# (id, reply, verdict, reason): replies that must never come out perfect (issue #15's
# fail-open cases first), then layouts that must be read to their verdict.
NEVER_PERFECT = [
    ("heading_then_rating_line_bad_facts", HEADINGS_BAD_FACTS, "bad", CONTRADICTORY),
    ("table_rating_last_column_bad_facts", TABLE_BAD_FACTS, "bad", CONTRADICTORY),
    ("comma_joined_line_bad_facts", ONE_LINE_BAD_FACTS, "bad", CONTRADICTORY),
    ("not_perfect", _lines("Not perfect - one given length is inconsistent."), None, UNKNOWN),
    ("poor", _lines("Poor - the circle cannot pass through all four points."), None, UNKNOWN),
    (
        "bad_slash_acceptable",
        _lines("Bad/Acceptable (the altitude is slightly off)"),
        None,
        UNKNOWN,
    ),
    ("excellent", _lines("Excellent - every number checks out."), None, UNKNOWN),
    ("perfect_or_acceptable", _lines("Perfect or Acceptable, hard to say."), None, UNKNOWN),
    ("bare_verdict", "Verdict: perfect", None, NO_RATINGS),
    (
        "final_judgement_after_prose",
        "The problem is elegant and the rationale is sound.\n\nFinal Judgement: Perfect",
        None,
        NO_RATINGS,
    ),
    (
        "missing_criterion",
        _lines("Perfect - fine.").replace(
            "- Concept coverage: Perfect - both concepts are needed.\n", ""
        ),
        None,
        MISSING,
    ),
    ("criterion_rated_twice_differently", SUMMARY_DISAGREES, None, CONFLICTING),
    ("truncated_mid_list", TRUNCATED, None, MISSING),
    ("restated_rubric_and_perfect_prose", RUBRIC_RESTATED, None, NO_RATINGS),
    ("quoted_example_is_not_an_answer", BLOCKQUOTE_EXAMPLE_ONLY, None, UNPARSEABLE),
    (
        "prose_only",
        "I think this is a perfect problem; nothing is bad about it.",
        None,
        UNPARSEABLE,
    ),
    (
        "truncated_inside_think",
        "<think>\nFormat: Perfect\nFactual accuracy: Perfect\n",
        None,
        UNPARSEABLE,
    ),
    ("example_lines_fill_no_gap", UNQUOTED_EXAMPLE_THEN_PARTIAL, None, MISSING),
    ("rating_asked_not_given", _lines("Perfect? Not quite - one length is off."), None, UNKNOWN),
    (
        "struck_out_rating_is_withdrawn",
        _lines("~~Perfect~~ Acceptable - the radius is slightly off."),
        "acceptable",
        CONTRADICTORY,
    ),
    ("off_scale_verdict", _lines("Perfect - fine.", "Overall: Good"), None, UNKNOWN),
    (
        "heading_value_and_rating_line_disagree",
        "### Solvability: Perfect\nOn reflection the answer is not unique.\nRating: Acceptable\n"
        + _lines("Perfect - fine.").replace(
            "- Solvability: Perfect - the answer is a unique integer.\n", ""
        ),
        None,
        CONFLICTING,
    ),
    (
        "table_with_verdict_row",
        TABLE_BAD_FACTS.replace("\n\nVerdict: perfect", "\n| **Verdict** | | **Perfect** |"),
        "bad",
        CONTRADICTORY,
    ),
]
READ = [
    ("qwen_bold_numbered", QWEN_BOLD_NUMBERED, "perfect", None),
    ("authors_bold_headings_rating_bullets", AUTHORS_LAYOUT, "perfect", None),
    ("llama_rating_for_prefix", LLAMA_RATING_FOR, "acceptable", None),
    ("heading_then_bare_rating_line", HEADING_BARE_RATING, "bad", None),
    ("criteria_as_table_columns", TRANSPOSED_TABLE, "perfect", None),
    ("table_rating_first_column", TABLE_RATING_FIRST, "acceptable", None),
    ("table_without_header_row", TABLE_NO_HEADER, "perfect", None),
    ("think_block_ignored", THINK_THEN_ANSWER, "perfect", None),
    ("restated_format_then_answer", RESTATED_FORMAT_THEN_ANSWER, "bad", None),
    ("backtick_example_then_answer", BACKTICK_EXAMPLE_THEN_ANSWER, "bad", None),
    ("fenced_answer", FENCED_ANSWER, "acceptable", None),
    ("fenced_example_then_answer", FENCED_EXAMPLE_THEN_ANSWER, "bad", None),
    ("summary_table_agrees", SUMMARY_AGREES, "perfect", None),
    (
        "semicolon_joined_line",
        "format: perfect; factual accuracy: perfect; difficulty alignment: acceptable; "
        "concept coverage: perfect; solvability: perfect. overall: perfect",
        "perfect",
        None,
    ),
    (
        "pipe_joined_line",
        "Format: Perfect | Factual accuracy: Perfect | Difficulty alignment: Perfect | "
        "Concept coverage: Perfect | Solvability: Acceptable",
        "acceptable",
        None,
    ),
    (
        "em_dashes_and_emoji",
        "\u2705 Format \u2014 Perfect\n\u2705 Factual accuracy \u2014 Perfect\n"
        "\u26a0\ufe0f Difficulty alignment \u2014 Acceptable\n\u2705 Concept coverage \u2014 "
        "Perfect\n\u274c Solvability \u2014 Bad: the answer depends on an unstated radius.\n"
        "Final verdict \u2014 Bad",
        "bad",
        None,
    ),
    (
        "criterion_rating_suffix",
        "Format Rating: Perfect\nFactual Accuracy Rating: Perfect\nDifficulty Alignment Rating: "
        "Perfect\nConcept Coverage Rating: Perfect\nSolvability Rating: Perfect\n"
        "Overall Rating: Perfect",
        "perfect",
        None,
    ),
    (
        "rating_in_parentheses",
        "**Format (Perfect):** Clean.\n**Factual Accuracy (Perfect):** Correct.\n"
        "**Difficulty Alignment (Perfect):** Fits.\n**Concept Coverage (Acceptable):** Thin.\n"
        "**Solvability (Acceptable):** The answer needs an extra assumption.",
        "acceptable",
        None,
    ),
    (
        "criterion_is_rating",
        "Format is Perfect.\nFactual accuracy is Perfect.\nDifficulty alignment is Acceptable.\n"
        "Concept coverage is Perfect.\nSolvability is Bad, because two answers fit.\n"
        "Solvability is perfect only if the radius is known, which it is not.",
        "bad",
        None,
    ),
    (
        "snake_case_keys",
        "format: perfect\nfactual_accuracy: perfect\ndifficulty_alignment: perfect\n"
        "concept_coverage: acceptable\nsolvability: perfect\nverdict: perfect",
        "perfect",
        None,
    ),
    ("derived_without_verdict", _lines("Perfect - fine.", verdict=""), "perfect", None),
    (
        "bad_words_only_in_reasons",
        _lines("Perfect - not bad at all, every figure checks."),
        "perfect",
        None,
    ),
    (
        "rule_needs_two_of_the_other_three",
        QWEN_BOLD_NUMBERED.replace("**Format**: Perfect", "**Format**: Acceptable"),
        "acceptable",
        CONTRADICTORY,
    ),
    (
        "verdict_stricter_than_ratings",
        _lines("Perfect.", "Final Judgement: Acceptable"),
        "acceptable",
        CONTRADICTORY,
    ),
    (
        "solvability_acceptable_verdict_perfect",
        _lines("Perfect.").replace("Solvability: Perfect", "Solvability: Acceptable"),
        "acceptable",
        CONTRADICTORY,
    ),
    ("score_out_of_five", HEADINGS_BAD_FACTS.replace("Rating: Bad", "Rating: 2/5"), None, UNKNOWN),
    ("llama_chatty_prose_then_bullets", LLAMA_CHATTY, "perfect", None),
    (
        "answer_lines_in_code_style",
        "- `Format: Perfect` - clean\n- `Factual accuracy: Perfect` - correct\n"
        "- `Difficulty alignment: Acceptable` - easy\n- `Concept coverage: Perfect` - used\n"
        "- `Solvability: Bad` - two answers\n\n`Verdict: bad`",
        "bad",
        None,
    ),
    (
        "bad_known_though_a_criterion_is_missing",
        "Factual accuracy: Bad - the triangle cannot exist.\nSolvability: Bad - so no answer.\n"
        "Verdict: bad",
        "bad",
        MISSING,
    ),
]
REPLIES = NEVER_PERFECT + READ


@pytest.mark.parametrize(
    ("reply", "verdict", "reason"),
    [case[1:] for case in REPLIES],
    ids=[case[0] for case in REPLIES],
)
def test_judge_reply(reply: str, verdict: str | None, reason: str | None) -> None:
    parsed = parse_judgement(reply)
    assert (parsed.verdict, parsed.reason) == (verdict, reason)
    assert parsed.contradictory == (reason == CONTRADICTORY)


def test_the_table_is_large_and_covers_the_fail_open_cases() -> None:
    assert len(REPLIES) >= 40
    assert len(NEVER_PERFECT) >= 20
    assert not [case for case in NEVER_PERFECT if case[2] == "perfect"]


@pytest.mark.parametrize(
    "reply", [QWEN_BOLD_NUMBERED, AUTHORS_LAYOUT, TABLE_BAD_FACTS, HEADING_BARE_RATING]
)
def test_every_criterion_is_read_from_structure(reply: str) -> None:
    parsed = parse_judgement(reply)
    assert all(parsed.ratings[c] is not None for c in CRITERIA)


def test_source_says_whether_a_verdict_line_agreed() -> None:
    assert parse_judgement(QWEN_BOLD_NUMBERED).source == SOURCE_VERDICT_LINE
    assert parse_judgement(_lines("Perfect.", verdict="")).source == SOURCE_RATINGS
    assert parse_judgement(HEADINGS_BAD_FACTS).source == SOURCE_RATINGS


DEGENERATE = {
    "labels_joined_by_commas": "Format: Perfect, " * 5000,
    "table_rows_repeated": "| Format | Perfect |\n" * 5000,
    "backticked_examples": "`Format: Perfect` and " * 5000,
    "headings_repeated": "### Solvability\n" * 10000,
    "pipes_only": "|" * 40000,
    "open_fences": "```\n" * 10000,
}


@pytest.mark.timeout(10)
@pytest.mark.parametrize("reply", list(DEGENERATE.values()), ids=list(DEGENERATE))
def test_degenerate_replies_are_rejected_quickly(reply: str) -> None:
    parsed = parse_judgement(reply)
    assert parsed.verdict is None and parsed.reason in (MISSING, UNKNOWN, UNPARSEABLE)
