"""Classify the value written after a judge's label: a rating, a rating-like word, or prose.

Only Perfect, Acceptable and Bad are ratings. A short value made of other judging words
("Poor", "Excellent", "Not perfect", "Bad/Acceptable", "4/5") is UNKNOWN: the judge rated
the criterion, but not on the method's scale, so the reply must not pass. The format
restated ("<Perfect|Acceptable|Bad>", "Perfect, Acceptable or Bad") is a TEMPLATE, and
anything else (a justification) is PROSE; neither rates anything.
"""

from __future__ import annotations

import re

from promptcot_ray.records import RATINGS

RATING = "rating"
UNKNOWN = "unknown"
TEMPLATE = "template"
PROSE = "prose"
EMPTY = "empty"

_WORD = r"(?:perfect|acceptable|bad)"
_TEMPLATE_RE = re.compile(rf"^\W*{_WORD}\W+(?:or\s+)?{_WORD}\W+(?:or\s+)?{_WORD}\b", re.I)
_INLINE_LABEL_RE = re.compile(r"^(?:rating|score|grade)\s*+[:=\-\u2013\u2014]?\s*+", re.I)
# The head of a value ends at punctuation or a spaced dash: "Bad - the triangle ..." -> "Bad".
_HEAD_END_RE = re.compile(r"\s[-\u2013\u2014]|[-\u2013\u2014]\s|[.,;:!?()\[\]{}<>\u2013\u2014]")
# What follows a rating in a restated format: "Perfect - ...", "Bad - <reason>", "[why]".
_PLACEHOLDER_RE = re.compile(
    r"^[\s\-\u2013\u2014:,;]*+(?:\.{2,}|\u2026|<[^<>]{0,40}>|[\[(]?(?:one-line\s+)?"
    r"(?:reason|justification|explanation|why)[\])]?)[\s.]*$",
    re.I,
)
_TOKEN_RE = re.compile(r"[a-z0-9'-]+|[/|&+]")
_JOINERS = frozenset({"or", "and", "to", "vs", "/", "|", "&", "+"})
# Words judges rate with when they leave the scale, and the qualifiers around them.
_JUDGING_TEXT = """
not no yes poor fair good great excellent outstanding very mostly nearly almost
somewhat partly partially slightly highly fully quite strong weak average adequate
inadequate satisfactory unsatisfactory unacceptable ok okay fine flawed correct
incorrect pass passed fail failed high medium low mixed borderline moderate n a na none
imperfect perfectly needs improvement minor major issues sufficient insufficient
reasonable solid questionable ambiguous invalid valid wrong
"""
_JUDGING_WORDS = frozenset(_JUDGING_TEXT.split())
_MAX_UNKNOWN_TOKENS = 4
_MAX_STRICT_TOKENS = 3


def _is_judging(token: str) -> bool:
    return token in _JUDGING_WORDS or token in RATINGS or token in _JOINERS or token.isdigit()


def classify(value: str, strict: bool = False) -> tuple[str, str]:
    """Return (kind, word): the rating (lower case) or the value's head for other kinds.

    A value is a rating when its first word is one and it is not a hedge between ratings
    ("Perfect or Acceptable"), not a question ("Perfect?") and not followed by a placeholder
    ("Perfect - <reason>": an example of the format). `strict` (a table cell, a line after
    a heading) also needs the head to be at most three words: there a rating stands alone.
    """
    text = _INLINE_LABEL_RE.sub("", value.strip())
    if not text:
        return EMPTY, ""
    if text.startswith(("<", "{")) or _TEMPLATE_RE.match(text):
        return TEMPLATE, text[:40]
    text = re.sub(r"^[^\w<{]+", "", text)  # emoji, checkmarks, stray brackets before a rating
    end = _HEAD_END_RE.search(text)
    head, rest = (text[: end.start()], text[end.start() :]) if end else (text, "")
    head = head.strip()
    tokens = _TOKEN_RE.findall(head.lower())
    if not tokens:
        return EMPTY, ""
    if tokens[0] in RATINGS:
        if rest and _PLACEHOLDER_RE.match(rest):
            return TEMPLATE, text[:40]  # an example of the format with no real reason
        hedged = len(tokens) > 2 and tokens[1] in _JOINERS and _is_judging(tokens[2])
        if hedged or rest.lstrip().startswith("?"):
            return UNKNOWN, head  # "Perfect or Acceptable", "Perfect? Not quite"
        if not strict or len(tokens) <= _MAX_STRICT_TOKENS:
            return RATING, tokens[0]
        return PROSE, head
    if len(tokens) <= _MAX_UNKNOWN_TOKENS and all(_is_judging(t) for t in tokens):
        return UNKNOWN, head
    return PROSE, head
