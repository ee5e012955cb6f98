"""Turn extracted concept strings into display texts and de-duplication keys.

Concept extraction returns strings with list markup ("1. ", "- ", quotes, a final period)
and varying case. `clean_concept` removes the markup but keeps the spelling (the text shown
in prompts); `normalize_concept` also case-folds it, giving the key the pool dedupes on.
"""

from __future__ import annotations

import re
import unicodedata

# A list marker at the start: "-", "*", "•", "1.", "2)", "(3)", "a)", "(b)", then whitespace.
_BULLET_RE = re.compile(
    r"^(?:[-*+\u2022\u00b7\u2023\u25e6\u25aa\u2013\u2014]+|\(?\d{1,3}[.)]|\(?[a-zA-Z]\))\s+"
)
_TRAILING_PUNCT = ".,;:!?\u3002\u2026"
_DOUBLE_QUOTES = '"\u201c\u201d\u00ab\u00bb`'
# Characters stripped only when they appear at both ends (an apostrophe inside or at one
# end is part of the text: "Vieta's formulas", "Menelaus' theorem").
_PAIRED = "'\u2018\u2019*_" + _DOUBLE_QUOTES


def clean_concept(text: str) -> str:
    """Return `text` without list markup: NFKC, collapsed whitespace, no bullet/quotes/end dot.

    Case and spelling are kept; this is the display text of a pool concept.
    """
    text = " ".join(unicodedata.normalize("NFKC", text).split())
    while True:
        before = text
        text = _BULLET_RE.sub("", text).rstrip(_TRAILING_PUNCT).strip()
        if len(text) >= 2 and text[0] in _PAIRED and text[-1] in _PAIRED:
            text = text[1:-1].strip()
        text = text.lstrip(_DOUBLE_QUOTES).rstrip(_DOUBLE_QUOTES).strip()
        if text == before:
            return text


def normalize_concept(text: str) -> str:
    """Return the de-duplication key of a concept: `clean_concept` then case-folded.

    "1. Vieta's Formulas." and "vieta's formulas" share the key "vieta's formulas".
    """
    return " ".join(clean_concept(text).casefold().split())
