"""Parse model replies (drafts, rationales, judgements, concept lists) into values or reasons.

Every parser is pure and total: it takes the raw reply (or None when the engine gave none)
and returns a frozen dataclass holding the parsed value(s) or a stable reason code from
`records`, so a malformed reply becomes a counted rejection, never an exception. Only the
standard library is used, so these functions run in any Ray worker and in unit tests.

Shared rule: a reasoning model's `<think>...</think>` section is not its answer. Text up to
the last `</think>` is ignored, and a reply whose `<think>` never closes (truncated while
thinking) has no answer at all, even if its thoughts rehearse one.
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from promptcot_ray import records
from promptcot_ray.records import CRITERIA, LEVELS, RATINGS

SOURCE_VERDICT_LINE = "verdict_line"  # the verdict was read from a `Verdict: X` line
SOURCE_RATINGS = "ratings"  # the verdict was derived from the five per-criterion ratings

# --- drafts: <!-- BEGIN RATIONALE --> ... <!-- END RATIONALE --> and the same for PROBLEM --
_TAG = r"<!--\s*{edge}[\s_-]*{name}\s*-->"
_RATIONALE_BEGIN_RE = re.compile(_TAG.format(edge="begin", name="rationale"), re.IGNORECASE)
_RATIONALE_END_RE = re.compile(_TAG.format(edge="end", name="rationale"), re.IGNORECASE)
_PROBLEM_BEGIN_RE = re.compile(_TAG.format(edge="begin", name="problem"), re.IGNORECASE)
_PROBLEM_END_RE = re.compile(_TAG.format(edge="end", name="problem"), re.IGNORECASE)
_FENCE_LINE_RE = re.compile(r"^\s*```[\w+-]*\s*$")
_DRAFT_REASONS = {  # keyed by (rationale missing, problem missing)
    (True, True): records.REASON_DRAFT_MISSING_BOTH,
    (True, False): records.REASON_DRAFT_MISSING_RATIONALE,
    (False, True): records.REASON_DRAFT_MISSING_PROBLEM,
    (False, False): None,
}
_THINK_OPEN = "<think>"
_THINK_CLOSE = "</think>"

# --- judgements ------------------------------------------------------------------------------
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

# --- concept lists ---------------------------------------------------------------------------
_LIST_START_RE = re.compile(r"\[\s*[\"']")
_MAX_LIST_STARTS = 32  # bounds the work on degenerate, repetitive replies
_ITEM_MARKER_RE = re.compile(r"^(?:(?:\d{1,2}\s*[.):]|\(\d{1,2}\))\s*|[-*+\u2022\u2013]\s+)")
_ITEM_PREFIX_RE = re.compile(
    r"^(?:foundational\s+)?(?:knowledge\s+point|concept)s?\s*+#?\s*+\d*+\s*+[:.)\-\u2013\u2014]\s*",
    re.I,
)
_EMPHASIS_RE = re.compile(r"\*\*|__|`")
_LEVEL_LINE_RE = re.compile(
    r"^(?:(?:difficulty|contest|target|competition|problem)\s+)*(?:level|difficulty)"
    r"\s*(?:is\s*)?[:=\-\u2013\u2014]\s*(?P<value>.*)$",
    re.I,
)
_JSON_LEVEL_RE = re.compile(r"[\"']level[\"']\s*:\s*[\"'](?P<value>[^\"']+)", re.I)
_LEVEL_LINE_MARKUP_RE = re.compile(r"[*_`#>\"'{}]+")
_LEVEL_ALIASES = {
    **{re.sub(r"[^a-z0-9]", "", level.lower()): level for level in LEVELS},
    "hmmtfebruary": "HMMT-Feb",
    "hmmtnovember": "HMMT-Nov",
}
_ITEM_TRAILING = " \t.,;"
_ITEM_QUOTES = "\"'"


@dataclass(frozen=True)
class DraftParse:
    """A generator reply split into rationale and problem; `reason` is None iff both exist."""

    rationale: str | None
    problem: str | None
    reason: str | None


@dataclass(frozen=True)
class RationaleParse:
    """A rationale-writer reply; `reason` is None iff a non-empty rationale block exists."""

    rationale: str | None
    reason: str | None


@dataclass(frozen=True)
class JudgeParse:
    """A judge reply: the verdict, each criterion's rating (None if absent) and provenance.

    `source` is SOURCE_VERDICT_LINE or SOURCE_RATINGS (None when there is no verdict). A
    contradictory reply carries both a verdict (the stricter reading) and a reason.
    """

    verdict: str | None
    ratings: dict[str, str | None]
    source: str | None
    reason: str | None


@dataclass(frozen=True)
class ConceptParse:
    """A concept-extraction reply: the concepts in order, the canonical level (or None)."""

    concepts: tuple[str, ...]
    level: str | None
    reason: str | None


def _strip_thinking(text: str) -> str:
    """Drop a `<think>` section, since rehearsed answers inside it are not the answer."""
    lowered = text.lower()
    close = lowered.rfind(_THINK_CLOSE)
    if close >= 0:
        return text[close + len(_THINK_CLOSE) :]
    opened = lowered.find(_THINK_OPEN)
    return text[:opened] if opened >= 0 else text


# --- drafts ----------------------------------------------------------------------------------


def _clean_block(content: str) -> str | None:
    """Strip a block's content and any code-fence lines at its edges; None when empty."""
    lines = content.strip().splitlines()
    if lines and _FENCE_LINE_RE.match(lines[0]):
        lines = lines[1:]
    if lines and _FENCE_LINE_RE.match(lines[-1]):
        lines = lines[:-1]
    cleaned = "\n".join(lines).strip()
    return cleaned or None


def _last_block(
    text: str, begin_re: re.Pattern[str], end_re: re.Pattern[str], start: int = 0
) -> tuple[str | None, int]:
    """Return (content, end offset) of the last complete BEGIN..END block at or after `start`.

    A block is an END tag paired with the nearest BEGIN before it that no other END closes,
    so a BEGIN without an END (truncation) never pairs with a later block's END.
    """
    tags = [(m.start(), m.end(), True) for m in begin_re.finditer(text, start)]
    tags += [(m.start(), m.end(), False) for m in end_re.finditer(text, start)]
    open_at, found = None, (None, -1)
    for tag_start, tag_end, is_begin in sorted(tags):
        if is_begin:
            open_at = tag_end
        elif open_at is not None:
            found, open_at = (text[open_at:tag_start], tag_end), None
    content, end = found
    return (_clean_block(content) if content is not None else None), end


def parse_draft(text: str | None) -> DraftParse:
    """Split a generator reply into its rationale and problem blocks.

    Rule: take the last complete rationale block, then the last complete problem block that
    starts after it (any problem block when no rationale exists). Models that restate the
    format before answering are read correctly, and a reply truncated inside its final
    problem block is not rescued by an earlier example. An empty block counts as missing.
    """
    if text is None or not text.strip():
        return DraftParse(None, None, records.REASON_DRAFT_EMPTY)
    answer = _strip_thinking(text)
    rationale, rationale_end = _last_block(answer, _RATIONALE_BEGIN_RE, _RATIONALE_END_RE)
    problem, _ = _last_block(answer, _PROBLEM_BEGIN_RE, _PROBLEM_END_RE, max(rationale_end, 0))
    return DraftParse(rationale, problem, _DRAFT_REASONS[rationale is None, problem is None])


def parse_rationale(text: str | None) -> RationaleParse:
    """Read the rationale block of a rationale-writer reply (the last complete one)."""
    if text is None or not text.strip():
        return RationaleParse(None, records.REASON_RATIONALE_EMPTY)
    rationale, _ = _last_block(_strip_thinking(text), _RATIONALE_BEGIN_RE, _RATIONALE_END_RE)
    return RationaleParse(rationale, None if rationale else records.REASON_RATIONALE_MISSING)


# --- judgements ------------------------------------------------------------------------------


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


def _reconcile(stated: str, ratings: dict[str, str | None]) -> tuple[str, str, str | None]:
    """Check a stated verdict against the ratings; on disagreement keep the stricter one.

    Missing ratings are taken as perfect, giving the laxest verdict the given ratings allow:
    a stated verdict laxer than that is contradictory. With all five ratings present, a
    stated verdict stricter than theirs is contradictory too. Never a lax contradiction wins.
    """
    bound = verdict_from_ratings({c: ratings[c] or "perfect" for c in CRITERIA})
    if _SEVERITY[stated] < _SEVERITY[bound]:
        return bound, SOURCE_RATINGS, records.REASON_JUDGE_CONTRADICTORY
    if all(ratings.values()) and stated != bound:
        return stated, SOURCE_VERDICT_LINE, records.REASON_JUDGE_CONTRADICTORY
    return stated, SOURCE_VERDICT_LINE, None


def parse_judgement(text: str | None) -> JudgeParse:
    """Read a judge reply's verdict: the final verdict line, else the five ratings.

    Only structured lines count, so "perfect" in prose or a justification never makes a
    reply perfect. A verdict line that disagrees with the ratings yields the stricter
    verdict with records.REASON_JUDGE_CONTRADICTORY (see `_reconcile`).
    """
    if text is None or not text.strip():
        return JudgeParse(None, dict.fromkeys(CRITERIA), None, records.REASON_JUDGE_EMPTY)
    lines = [_normalize_line(line) for line in _strip_thinking(text).splitlines()]
    ratings = _find_ratings(lines)
    stated = _find_verdict(lines)
    if stated is not None:
        verdict, source, reason = _reconcile(stated, ratings)
        return JudgeParse(verdict, ratings, source, reason)
    if all(ratings.values()):
        derived = verdict_from_ratings({c: str(ratings[c]) for c in CRITERIA})
        return JudgeParse(derived, ratings, SOURCE_RATINGS, None)
    return JudgeParse(None, ratings, None, records.REASON_JUDGE_UNPARSEABLE)


# --- concept lists ---------------------------------------------------------------------------


def match_level(value: str) -> str | None:
    """Map a loosely written contest level ("hmmt february", "aime") to its LEVELS spelling.

    None when no level or several different levels are named: a reply that echoes the list
    of choices, or hedges between two, has not picked one.
    """
    squashed = re.sub(r"[^a-z0-9]", "", value.lower())
    named = {level for alias, level in _LEVEL_ALIASES.items() if alias in squashed}
    return named.pop() if len(named) == 1 else None


def _matching_bracket(text: str, start: int) -> int:
    """Return the index of the `]` closing the `[` at `start`, skipping quoted text; -1 if none."""
    depth, quote, escaped = 0, "", False
    for index in range(start, len(text)):
        char = text[index]
        if escaped:
            escaped = False
        elif quote:
            escaped = char == "\\"
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[]":
            depth += 1 if char == "[" else -1
            if depth == 0:
                return index
    return -1


def _literal_list(text: str) -> list[str] | None:
    """Return the last Python/JSON list of strings written in `text`, or None."""
    starts = [m.start() for m in _LIST_START_RE.finditer(text)][-_MAX_LIST_STARTS:]
    for start in reversed(starts):
        end = _matching_bracket(text, start)
        if end < 0:
            continue
        snippet = text[start : end + 1]
        for loader in (json.loads, ast.literal_eval):
            try:
                value = loader(snippet)
            except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
                continue
            if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                return value
    return None


def _level_value(line: str) -> str | None:
    """Return the value of a `Level: X` line (any markup), or None for other lines."""
    cleaned = _LEVEL_LINE_MARKUP_RE.sub("", _ITEM_MARKER_RE.sub("", line.strip()))
    match = _LEVEL_LINE_RE.match(cleaned.strip())
    return match["value"] if match else None


def _list_items(lines: list[str]) -> list[str]:
    """Return the items of numbered, bulleted or `Concept n:` lines at the outermost indent.

    Without any marked line, every line not ending in ":" is an item (one concept per line).
    Nested bullets (explanations under an item) are deeper-indented and are skipped.
    """
    marked: list[tuple[int, str]] = []
    for line in lines:
        stripped = line.strip()
        item = _ITEM_PREFIX_RE.sub("", _EMPHASIS_RE.sub("", _ITEM_MARKER_RE.sub("", stripped)))
        if item != _EMPHASIS_RE.sub("", stripped):
            marked.append((len(line) - len(line.lstrip()), item))
    if not marked:
        plain = (_EMPHASIS_RE.sub("", line).strip() for line in lines)
        return [item for item in plain if not item.endswith(":") and "```" not in item]
    outermost = min(indent for indent, _ in marked)
    return [item for indent, item in marked if indent == outermost]


def _clean_items(items: list[str], max_chars: int) -> tuple[str, ...]:
    """Trim items; drop over-long, repeated (case-insensitive) and wordless ones like "..."."""
    kept: dict[str, str] = {}
    for raw in items:
        item = raw.strip().strip(_ITEM_QUOTES).rstrip(_ITEM_TRAILING).strip()
        if len(item) <= max_chars and any(char.isalnum() for char in item):
            kept.setdefault(item.casefold(), item)
    return tuple(kept.values())


def parse_concepts(text: str | None, k_min: int, max_chars: int = 200) -> ConceptParse:
    """Read a concept-extraction reply: its concepts and the contest level it names.

    Accepts a Python/JSON list literal or numbered, bulleted or `Concept n:` lines. The last
    recognised `Level: X` line (or JSON "level" key) gives the level, None if there is none
    (not a rejection by itself); level lines are never concepts. Fewer than `k_min` usable
    concepts is records.REASON_CONCEPTS_TOO_FEW.
    """
    if text is None or not text.strip():
        return ConceptParse((), None, records.REASON_CONCEPTS_EMPTY)
    answer = _strip_thinking(text)
    lines, level = [], None
    for line in answer.splitlines():
        value = _level_value(line)
        if value is None:
            lines.append(line)
        else:
            level = match_level(value) or level
    json_level = _JSON_LEVEL_RE.search(answer)
    level = level or (match_level(json_level["value"]) if json_level else None)
    literal = _literal_list("\n".join(lines))
    items = literal if literal is not None else _list_items([x for x in lines if x.strip()])
    concepts = _clean_items(items, max_chars)
    reason = records.REASON_CONCEPTS_TOO_FEW if len(concepts) < k_min else None
    return ConceptParse(concepts, level, reason)
