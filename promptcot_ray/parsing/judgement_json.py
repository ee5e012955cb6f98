"""Read a `schema` judge reply (prompts.judge.reply_schema): five rated criteria and a verdict.

Guided decoding makes an engine's reply exactly one such object, but an OpenAI-compatible
endpoint may only be asked for JSON, and a reply can still be cut off at max_tokens; so the
parser reads JSON the way models write it (inside a ```json fence, after a sentence, around a
`<think>` block) and fails closed on everything else: malformed or truncated JSON, a
missing criterion, a criterion given twice with different values, or a rating outside
Perfect/Acceptable/Bad is never perfect. It has no verdict and a reason. The verdict is
always computed from the ratings by the method's rule (`reconcile_verdict`): a stated
verdict that disagrees marks the reply contradictory and the stricter of the two wins.
"""

from __future__ import annotations

import json
import re
from typing import Any

from promptcot_ray import records
from promptcot_ray.parsing.judgements import (
    SOURCE_RATINGS,
    JudgeParse,
    reconcile_verdict,
    verdict_from_ratings,
)
from promptcot_ray.parsing.thinking import strip_thinking
from promptcot_ray.records import CRITERIA, RATINGS

SOURCE_JSON_VERDICT = "json_verdict"  # the reply's own verdict field won: stricter than ratings
_VERDICT_KEY = "verdict"
_KEYS = {**{c.replace("_", ""): c for c in CRITERIA}, _VERDICT_KEY: _VERDICT_KEY}
_NON_LETTERS_RE = re.compile(r"[^a-z]")
_MAX_OBJECT_STARTS = 64  # bounds the work on long or degenerate replies


class _Conflict:
    """A key given twice with different values (JSON objects keep only the last one)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Conflict)

    __hash__ = None  # type: ignore[assignment]


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Build an object, marking keys (compared without case, spaces or '_') given twice."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        norm = _NON_LETTERS_RE.sub("", key.lower())
        name = _KEYS.get(norm, norm)
        out[name] = _Conflict() if name in out and out[name] != value else value
    return out


# strict=False: guided decoding's JSON grammar lets a raw newline or tab into a string (a
# reason); the structure and the rating enum are still checked, so this passes nothing more.
_DECODER = json.JSONDecoder(object_pairs_hook=_pairs, strict=False)


def _candidates(text: str) -> list[dict[str, Any]]:
    """Top-level JSON objects in `text` that name at least one criterion."""
    found: list[dict[str, Any]] = []
    start, tries = text.find("{"), 0
    while start >= 0 and tries < _MAX_OBJECT_STARTS:
        tries += 1
        try:
            value, end = _DECODER.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        if isinstance(value, dict) and any(c in value for c in CRITERIA):
            found.append(value)
        start = text.find("{", end)
    return found


def _rating(value: Any) -> tuple[str | None, str | None]:
    """(rating, reason code) for one criterion's value: {"rating": ...} or a bare rating."""
    if value is None:
        return None, records.REASON_JUDGE_MISSING_CRITERION
    if isinstance(value, _Conflict):
        return None, records.REASON_JUDGE_CONFLICTING_RATINGS
    if isinstance(value, dict):
        if "rating" not in value:
            return None, records.REASON_JUDGE_MISSING_CRITERION
        return _rating(value["rating"])
    word = value.strip().lower() if isinstance(value, str) else None
    if word not in RATINGS:
        return None, records.REASON_JUDGE_UNKNOWN_RATING
    return word, None


def _unparseable(ratings: dict[str, str | None], reason: str) -> JudgeParse:
    return JudgeParse(None, ratings, None, reason)


def parse_judgement_json(text: str | None) -> JudgeParse:
    """Read a JSON judge reply: the verdict its five ratings give, or a reason it has none.

    A stated verdict stricter or laxer than the ratings' is recorded as contradictory
    (records.REASON_JUDGE_CONTRADICTORY) and the stricter one is kept.
    """
    empty = dict.fromkeys(CRITERIA)
    if text is None or not text.strip():
        return _unparseable(empty, records.REASON_JUDGE_EMPTY)
    objects = _candidates(strip_thinking(text))
    if not objects or any(o != objects[0] for o in objects[1:]):  # none, or two that differ
        return _unparseable(empty, records.REASON_JUDGE_UNPARSEABLE)
    reply = objects[0]
    ratings: dict[str, str | None] = {}
    failures: list[str] = []
    for criterion in CRITERIA:
        ratings[criterion], failure = _rating(reply.get(criterion))
        failures += [failure] if failure else []
    if failures:
        return _unparseable(ratings, failures[0])
    stated = reply.get(_VERDICT_KEY)
    if stated is not None:
        stated, failure = _rating(stated)
        if failure:
            return _unparseable(ratings, failure)
    complete = {c: str(ratings[c]) for c in CRITERIA}
    verdict, contradictory = reconcile_verdict(stated, complete)
    source = SOURCE_RATINGS if verdict == verdict_from_ratings(complete) else SOURCE_JSON_VERDICT
    reason = records.REASON_JUDGE_CONTRADICTORY if contradictory else None
    return JudgeParse(verdict, ratings, source, reason, contradictory)
