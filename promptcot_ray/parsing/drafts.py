"""Parse generator and rationale-writer replies into rationale and problem blocks.

Every parser here is pure and total: it takes the raw reply (or None when the engine gave
none) and returns a frozen dataclass holding the parsed value(s) or a stable reason code from
`records`, so a malformed reply becomes a counted rejection, never an exception. Only the
standard library is used, so these functions run in any Ray worker and in unit tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from promptcot_ray import records
from promptcot_ray.parsing.thinking import strip_thinking

# <!-- BEGIN RATIONALE --> ... <!-- END RATIONALE --> and the same for PROBLEM --
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
    answer = strip_thinking(text)
    rationale, rationale_end = _last_block(answer, _RATIONALE_BEGIN_RE, _RATIONALE_END_RE)
    problem, _ = _last_block(answer, _PROBLEM_BEGIN_RE, _PROBLEM_END_RE, max(rationale_end, 0))
    return DraftParse(rationale, problem, _DRAFT_REASONS[rationale is None, problem is None])


def parse_rationale(text: str | None) -> RationaleParse:
    """Read the rationale block of a rationale-writer reply (the last complete one)."""
    if text is None or not text.strip():
        return RationaleParse(None, records.REASON_RATIONALE_EMPTY)
    rationale, _ = _last_block(strip_thinking(text), _RATIONALE_BEGIN_RE, _RATIONALE_END_RE)
    return RationaleParse(rationale, None if rationale else records.REASON_RATIONALE_MISSING)
