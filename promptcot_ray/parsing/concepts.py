"""Parse concept-extraction replies: the foundational concepts and the contest level named.

Pure and total like every reply parser: a malformed reply becomes a reason code from
`records`, never an exception. `match_level` is also used on seed rows' level strings.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass

from promptcot_ray import records
from promptcot_ray.parsing.thinking import strip_thinking
from promptcot_ray.records import LEVELS

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
class ConceptParse:
    """A concept-extraction reply: the concepts in order, the canonical level (or None)."""

    concepts: tuple[str, ...]
    level: str | None
    reason: str | None


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
    answer = strip_thinking(text)
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
