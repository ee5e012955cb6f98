"""Property tests of the free-text judge parser over layouts, orderings and rating words.

The gate's promise: a reply whose factual-accuracy or solvability rating is not Perfect, or
is missing, is never perfect, whatever layout it is written in, in whatever order, and
whatever verdict line it ends with. And the layouts the parser claims to read are read: a
reply rating all five criteria on the scale gives back exactly those ratings.
"""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st

from promptcot_ray.parsing import parse_judgement, reconcile_verdict, verdict_from_ratings
from promptcot_ray.prompts.judge import format_judgement
from promptcot_ray.records import CRITERIA, RATINGS

# No example database: the tests must not write a .hypothesis/ folder into the shared tree.
SETTINGS = settings(max_examples=300, deadline=None, database=None)

LABELS = {
    "format": ("Format", "FORMAT", "format"),
    "factual_accuracy": ("Factual accuracy", "Factual Accuracy", "factual_accuracy"),
    "difficulty_alignment": ("Difficulty alignment", "Difficulty Alignment"),
    "concept_coverage": ("Concept coverage", "Concept Coverage", "Concepts coverage"),
    "solvability": ("Solvability", "SOLVABILITY"),
}
# Values that rate a criterion off the method's scale: never a rating.
OFF_SCALE = ("Not perfect", "Poor", "Bad/Acceptable", "Excellent", "Perfect or Acceptable", "3/5")
WHY = (
    "the statement is clean",
    "not bad at all, though a perfect version is easy to imagine",
    "the answer is unique",
    "uses Vieta's formulas",
    "",
)
STATED = (
    "",
    "Verdict: perfect",
    "Final Judgement: Perfect",
    "**Overall:** perfect",
    "## Final Verdict\n\n**Perfect**",
)

Entry = tuple[str, str | None, str]  # (label, value or None when the criterion is left out, why)


def _value(rating: str, style: int) -> str:
    if rating not in RATINGS:
        return rating
    return (rating.capitalize(), rating, rating.upper(), f"**{rating.capitalize()}**")[style % 4]


def _colon_lines(entries: list[Entry]) -> str:
    return "\n".join(f"{label}: {value} - {why}" for label, value, why in entries if value)


def _bold_numbered(entries: list[Entry]) -> str:
    rated = [e for e in entries if e[1]]
    return "\n".join(
        f"{i}. **{label}**: {value}. {why}" for i, (label, value, why) in enumerate(rated, 1)
    )


def _heading_rating_line(entries: list[Entry]) -> str:
    blocks = [
        f"### {label}\n{why or 'Checked.'}\nRating: {value}"
        for label, value, why in entries
        if value
    ]
    return "\n\n".join(blocks)


def _heading_bare_line(entries: list[Entry]) -> str:
    return "\n\n".join(f"**{label}**\n{value}\n{why}" for label, value, why in entries if value)


def _table(entries: list[Entry]) -> str:
    rows = [f"| {label} | {why or '-'} | {value} |" for label, value, why in entries if value]
    return "\n".join(["| Criterion | Justification | Rating |", "|---|---|---|", *rows])


def _transposed_table(entries: list[Entry]) -> str:
    rated = [e for e in entries if e[1]]
    header = "| " + " | ".join(label for label, _, _ in rated) + " |"
    values = "| " + " | ".join(str(value) for _, value, _ in rated) + " |"
    return "\n".join([header, "|" + "---|" * len(rated), values])


def _joined(separator: str) -> Callable[[list[Entry]], str]:
    def render(entries: list[Entry]) -> str:
        return separator.join(f"{label}: {value}" for label, value, _ in entries if value)

    return render


LAYOUTS = (
    _colon_lines,
    _bold_numbered,
    _heading_rating_line,
    _heading_bare_line,
    _table,
    _transposed_table,
    _joined(", "),
    _joined("; "),
    _joined(" | "),
)


@st.composite
def replies(
    draw: st.DrawFn, core: st.SearchStrategy[str | None]
) -> tuple[str, dict[str, str | None]]:
    """A reply in a drawn layout and order; factual accuracy and solvability drawn from `core`."""
    ratings: dict[str, str | None] = {}
    for criterion in CRITERIA:
        is_core = criterion in ("factual_accuracy", "solvability")
        ratings[criterion] = draw(core if is_core else st.sampled_from(RATINGS))
    order = draw(st.permutations(CRITERIA))
    style = draw(st.integers(0, 3))
    entries = [
        (
            draw(st.sampled_from(LABELS[c])),
            _value(ratings[c], style) if ratings[c] else None,
            draw(st.sampled_from(WHY)),
        )
        for c in order
    ]
    layout = draw(st.sampled_from(LAYOUTS))
    preamble = draw(
        st.sampled_from(("", "This is a perfect problem.\n\n", "<think>All perfect.</think>"))
    )
    return preamble + layout(entries) + "\n\n" + draw(st.sampled_from(STATED)), ratings


NOT_PERFECT = st.sampled_from(("acceptable", "bad", None, *OFF_SCALE))


@SETTINGS
@given(replies(core=NOT_PERFECT), st.sampled_from(("factual_accuracy", "solvability")))
def test_a_core_criterion_not_perfect_or_missing_is_never_perfect(drawn, which) -> None:
    reply, ratings = drawn
    other = "solvability" if which == "factual_accuracy" else "factual_accuracy"
    assert ratings[which] != "perfect" or ratings[other] != "perfect"
    assert parse_judgement(reply).verdict != "perfect", reply


@SETTINGS
@given(replies(core=st.sampled_from(RATINGS)))
def test_every_layout_and_order_is_read_exactly(drawn) -> None:
    reply, ratings = drawn
    parsed = parse_judgement(reply)
    assert parsed.ratings == ratings, reply
    stated = "perfect" if "erfect" in reply.rsplit("\n\n", 1)[-1] else None
    assert (parsed.verdict, parsed.contradictory) == reconcile_verdict(stated, ratings), reply


@SETTINGS
@given(st.text(alphabet=st.sampled_from(list("PerfctAabdBl:-|*#\n ,.")), max_size=300))
def test_arbitrary_text_is_perfect_only_with_five_perfect_enough_ratings(text: str) -> None:
    parsed = parse_judgement(text)
    if parsed.verdict == "perfect":
        assert parsed.reason is None
        assert verdict_from_ratings(parsed.ratings) == "perfect"


@SETTINGS
@given(
    st.tuples(*[st.sampled_from(RATINGS) for _ in CRITERIA]),
    st.lists(st.sampled_from(WHY[:-1]), min_size=len(CRITERIA), max_size=len(CRITERIA)),
)
def test_format_judgement_replies_parse_to_their_verdict(combo, why) -> None:
    # The demo judge is trained on these replies: each must parse, to the rule's verdict.
    ratings = dict(zip(CRITERIA, combo, strict=True))
    verdict = verdict_from_ratings(ratings)
    reply = format_judgement(ratings, verdict, dict(zip(CRITERIA, why, strict=True)))
    parsed = parse_judgement(reply)
    assert (parsed.verdict, parsed.reason, parsed.ratings) == (verdict, None, ratings), reply
