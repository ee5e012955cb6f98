"""Parse a judge's free-text reply into five ratings and the verdict the method's rule gives.

The verdict always comes from the ratings (`verdict_from_ratings`); a stated verdict only
counts through `reconcile_verdict`, which records a disagreement and keeps the stricter of
the two. The JSON judge parser shares `JudgeParse` and `reconcile_verdict`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from promptcot_ray import records
from promptcot_ray.parsing.judgement_text import VERDICT, Reading, read_judgement
from promptcot_ray.parsing.thinking import strip_thinking
from promptcot_ray.records import CRITERIA, RATINGS

SOURCE_VERDICT_LINE = "verdict_line"  # the verdict was read from a `Verdict: X` line
SOURCE_RATINGS = "ratings"  # the verdict was derived from the five per-criterion ratings

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


def _stated_verdict(reading: Reading) -> str | None:
    """The strictest verdict the reply states, so a judge that wavers cannot pick the laxer."""
    stated = reading.ratings[VERDICT]
    return max(stated, key=_SEVERITY.__getitem__) if stated else None


def _problem(reading: Reading) -> str | None:
    """The reason a reply's ratings cannot give a verdict by the rule, or None if they can."""
    if any(reading.unknown.values()):
        return records.REASON_JUDGE_UNKNOWN_RATING
    if any(len(set(reading.ratings[c])) > 1 for c in CRITERIA):
        return records.REASON_JUDGE_CONFLICTING_RATINGS
    if not any(reading.ratings[c] for c in CRITERIA):
        stated = reading.ratings[VERDICT]
        return records.REASON_JUDGE_NO_RATINGS if stated else records.REASON_JUDGE_UNPARSEABLE
    if not all(reading.ratings[c] for c in CRITERIA):
        return records.REASON_JUDGE_MISSING_CRITERION
    return None


def parse_judgement(text: str | None) -> JudgeParse:
    """Read a free-text judge reply: five ratings from its structure, the verdict by the rule.

    Fails closed: a reply is perfect only if each criterion has exactly one rating on the
    method's scale and the rule gives perfect. Otherwise it carries a reason (unknown word,
    conflicting or missing rating, no ratings, contradictory verdict) and a verdict only
    where the ratings decide one anyway: any definite Bad makes it bad.
    """
    if text is None or not text.strip():
        return JudgeParse(None, dict.fromkeys(CRITERIA), None, records.REASON_JUDGE_EMPTY)
    reading = read_judgement(strip_thinking(text))
    single = {c: set(reading.ratings[c]) for c in CRITERIA}
    ratings = {c: next(iter(v)) if len(v) == 1 else None for c, v in single.items()}
    stated = _stated_verdict(reading)
    problem = _problem(reading)
    if problem is not None:
        verdict = "bad" if "bad" in ratings.values() else None
        contradictory = verdict is not None and stated is not None and stated != verdict
        return JudgeParse(
            verdict, ratings, SOURCE_RATINGS if verdict else None, problem, contradictory
        )
    verdict, contradictory = reconcile_verdict(stated, {c: str(r) for c, r in ratings.items()})
    source = SOURCE_VERDICT_LINE if verdict == stated else SOURCE_RATINGS
    reason = records.REASON_JUDGE_CONTRADICTORY if contradictory else None
    return JudgeParse(verdict, ratings, source, reason, contradictory)
