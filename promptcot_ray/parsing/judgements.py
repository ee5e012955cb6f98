"""Parse a judge's free-text reply into five ratings and the verdict the method's rule gives.

The verdict always comes from the ratings (`verdict_from_ratings`); a stated verdict only
counts through `reconcile_verdict`, which records a disagreement and keeps the stricter of
the two. The JSON judge parser shares `JudgeParse` and `reconcile_verdict`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from promptcot_ray import records
from promptcot_ray.parsing.thinking import strip_thinking
from promptcot_ray.records import CRITERIA, RATINGS

SOURCE_VERDICT_LINE = "verdict_line"  # the verdict was read from a `Verdict: X` line
SOURCE_RATINGS = "ratings"  # the verdict was derived from the five per-criterion ratings

_RATING_WORD = r"(?P<rating>perfect|acceptable|bad)\b"
# "perfect|acceptable|bad" or "perfect or bad" is the format being restated, not a rating.
_NOT_A_LIST = r"(?!\s*(?:[|/,]|or\b)\s*(?:perfect|acceptable|bad)\b)"
# Possessive quantifiers (`*+`) keep whitespace runs from backtracking polynomially.
_SEPARATOR = r"\s*+(?:[:=|\-\u2013\u2014]++\s*+|(?<=\s)is\s++)"
_VERDICT_LABEL = r"^(?:(?:the|final|overall|my)\s+)*verdict"
_VERDICT_RE = re.compile(_VERDICT_LABEL + _SEPARATOR + _RATING_WORD + _NOT_A_LIST, re.I)
_VERDICT_LABEL_ONLY_RE = re.compile(_VERDICT_LABEL + r"\s*+[:=\-\u2013\u2014]?\s*+$", re.I)
_BARE_RATING_RE = re.compile(r"^" + _RATING_WORD + r"[\s.!]*$", re.I)
_CRITERION = (
    r"(?P<criterion>format|factual[\s_-]*accuracy|difficulty[\s_-]*alignment"
    r"|concept[\s_-]*coverage|solvability)"
)
_RATING_LABEL = r"(?:(?:rating|score|grade)\s*+[:=\-]?\s*+)?"
_RATING_LINE_RE = re.compile(
    rf"^{_CRITERION}(?:\s*+(?:rating|score))?{_SEPARATOR}{_RATING_LABEL}{_RATING_WORD}{_NOT_A_LIST}",
    re.I,
)
# Markdown emphasis, code, headings, quotes, brackets and table pipes around labels/values.
_MARKUP_RE = re.compile(r"[*_`#>\[\]<>()\"]+")
_LEADING_MARKER_RE = re.compile(r"^\s*(?:\|\s*|\d{1,2}(?:\s*[.)]\s*|\s+)|[-+\u2022]\s+)*")
_CRITERION_KEYS = {c.replace("_", ""): c for c in CRITERIA}
_SEVERITY = {"perfect": 0, "acceptable": 1, "bad": 2}


@dataclass(frozen=True)
class JudgeParse:
    """A judge reply: the verdict, each criterion's rating (None if absent) and provenance.

    `source` is SOURCE_VERDICT_LINE or SOURCE_RATINGS (None when there is no verdict).
    `contradictory` is True when a stated verdict disagreed with the one the ratings give;
    such a reply carries the stricter verdict and records.REASON_JUDGE_CONTRADICTORY.
    """

    verdict: str | None
    ratings: dict[str, str | None]
    source: str | None
    reason: str | None
    contradictory: bool = False


def verdict_from_ratings(ratings: Mapping[str, str]) -> str:
    """Apply the method's rule to five ratings (case-insensitive); raise on a bad mapping.

    perfect: factual_accuracy and solvability are perfect, at least two of the other three
    are perfect and none is bad; acceptable: none is bad; otherwise bad.
    """
    values = {c: str(ratings[c]).lower() for c in CRITERIA}
    unknown = sorted(v for v in values.values() if v not in RATINGS)
    if unknown:
        raise ValueError(f"ratings must be one of {RATINGS}, got {unknown}")
    if "bad" in values.values():
        return "bad"
    core_perfect = values["factual_accuracy"] == values["solvability"] == "perfect"
    others = [c for c in CRITERIA if c not in ("factual_accuracy", "solvability")]
    if core_perfect and sum(values[c] == "perfect" for c in others) >= 2:
        return "perfect"
    return "acceptable"


def reconcile_verdict(stated: str | None, ratings: Mapping[str, str]) -> tuple[str, bool]:
    """Return (verdict, contradictory) for five complete ratings and an optional stated verdict.

    The verdict is computed from the ratings by the method's rule; a stated verdict (any
    case) that disagrees makes the reply contradictory and the stricter of the two wins, so a
    judge can never talk a problem up. Raises ValueError on an unknown rating or verdict.
    """
    computed = verdict_from_ratings(ratings)
    if stated is None:
        return computed, False
    said = stated.lower()
    if said not in _SEVERITY:
        raise ValueError(f"verdict must be one of {RATINGS}, got {stated!r}")
    stricter = max(said, computed, key=_SEVERITY.__getitem__)
    return stricter, said != computed


def _normalize_line(line: str) -> str:
    """Remove markdown, brackets, table pipes and list numbering around a judge's line."""
    return _LEADING_MARKER_RE.sub("", _MARKUP_RE.sub("", line)).strip()


def _find_ratings(lines: list[str]) -> dict[str, str | None]:
    """Map each criterion to the rating on its last rating line, or None."""
    ratings: dict[str, str | None] = dict.fromkeys(CRITERIA)
    for line in lines:
        match = _RATING_LINE_RE.match(line)
        if match:
            key = re.sub(r"[^a-z]", "", match["criterion"].lower())
            ratings[_CRITERION_KEYS[key]] = match["rating"].lower()
    return ratings


def _find_verdict(lines: list[str]) -> str | None:
    """Return the verdict of the last verdict line (`Verdict: X`, or `Verdict:` then `X`)."""
    verdict = None
    for index, line in enumerate(lines):
        match = _VERDICT_RE.match(line)
        if match:
            verdict = match["rating"].lower()
        elif _VERDICT_LABEL_ONLY_RE.match(line):
            following = [rest for rest in lines[index + 1 :] if rest][:1]
            bare = _BARE_RATING_RE.match(following[0]) if following else None
            verdict = bare["rating"].lower() if bare else verdict
    return verdict


def _reconcile(stated: str, ratings: dict[str, str | None]) -> JudgeParse:
    """Check a stated verdict against possibly partial ratings; keep the stricter one.

    Missing ratings are taken as perfect, giving the laxest verdict the given ratings allow:
    a stated verdict laxer than that is contradictory. With all five ratings present, a
    stated verdict stricter than theirs is contradictory too. Never a lax contradiction wins.
    """
    bound = verdict_from_ratings({c: ratings[c] or "perfect" for c in CRITERIA})
    contradictory = records.REASON_JUDGE_CONTRADICTORY
    if _SEVERITY[stated] < _SEVERITY[bound]:
        return JudgeParse(bound, ratings, SOURCE_RATINGS, contradictory, True)
    if all(ratings.values()) and stated != bound:
        return JudgeParse(stated, ratings, SOURCE_VERDICT_LINE, contradictory, True)
    return JudgeParse(stated, ratings, SOURCE_VERDICT_LINE, None)


def parse_judgement(text: str | None) -> JudgeParse:
    """Read a judge reply's verdict: the final verdict line, else the five ratings.

    Only structured lines count, so "perfect" in prose or a justification never makes a
    reply perfect. A verdict line that disagrees with the ratings yields the stricter
    verdict with records.REASON_JUDGE_CONTRADICTORY (see `_reconcile`).
    """
    if text is None or not text.strip():
        return JudgeParse(None, dict.fromkeys(CRITERIA), None, records.REASON_JUDGE_EMPTY)
    lines = [_normalize_line(line) for line in strip_thinking(text).splitlines()]
    ratings = _find_ratings(lines)
    stated = _find_verdict(lines)
    if stated is not None:
        return _reconcile(stated, ratings)
    if all(ratings.values()):
        derived = verdict_from_ratings({c: str(ratings[c]) for c in CRITERIA})
        return JudgeParse(derived, ratings, SOURCE_RATINGS, None)
    return JudgeParse(None, ratings, None, records.REASON_JUDGE_UNPARSEABLE)
