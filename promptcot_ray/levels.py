"""Contest levels: matching loosely written names to one spelling, seed levels vs generation.

Two lists, two jobs. `records.CONTEST_LEVELS` is every level a seed problem may carry
(AMC8, AMC10, AJHSME, AHSME, ... as AoPS tags them): a seed keeps its own level through
concept extraction and into the generator's training rows. `records.LEVELS` is the method's
eight *generation* levels, the only ones the combination sampler draws.
"""

from __future__ import annotations

import re

from promptcot_ray.records import CONTEST_LEVELS, LEVELS

_NON_ALNUM_RE = re.compile(r"[^a-z0-9]")
_ALIASES = {
    **{_NON_ALNUM_RE.sub("", level.lower()): level for level in CONTEST_LEVELS},
    "hmmtfebruary": "HMMT-Feb",
    "hmmtnovember": "HMMT-Nov",
    "aimei": "AIME",
    "aimeii": "AIME",
    "usajmo": "USAJMO",
    "ajhsme": "AJHSME",
    "amc8": "AMC8",
    "amc08": "AMC8",
    "imoshortlist": "IMO-Shortlist",
    "isl": "IMO-Shortlist",
}
# Whole-word check for short aliases that hide inside other words ("isl" in "island").
_SHORT = 3


def _squash(value: str) -> str:
    return _NON_ALNUM_RE.sub("", value.lower())


def _named(value: str) -> set[str]:
    """Aliases named in `value`, keeping only the longest where one contains another."""
    squashed = _squash(value)
    words = {_squash(w) for w in re.split(r"[\s,;/()]+", value)}
    hits = [
        alias for alias in _ALIASES if alias in squashed and (len(alias) > _SHORT or alias in words)
    ]
    # "HMMT February" names "hmmt" and "hmmtfebruary": the longer, more specific one wins
    return {a for a in hits if not any(a != b and a in b for b in hits)}


def match_level(value: str, levels: tuple[str, ...] = CONTEST_LEVELS) -> str | None:
    """Map a loosely written level ("AMC 10A", "hmmt february") to its spelling in `levels`.

    None when no level, a level outside `levels`, or several different levels are named: a
    reply that echoes the list of choices, or hedges between two, has not picked one.
    """
    named = {_ALIASES[a] for a in _named(value)}
    if len(named) != 1:
        return None
    level = named.pop()
    return level if level in levels else None


def is_generation_level(level: str) -> bool:
    """Whether `level` is one the sampler may draw (the method's eight)."""
    return level in LEVELS


_LEVEL_LINE_RE = re.compile(
    r"^[\s*_`#>\-\d.)]*(?:(?:difficulty|contest|target|competition|problem)\s+)*"
    r"(?:level|difficulty)[*_`\s]*(?:is\s*)?[:=\-\u2013\u2014][*_`\s]*(?P<value>.+)$",
    re.I | re.M,
)
_JSON_LEVEL_RE = re.compile(r"[\"']level[\"']\s*:\s*[\"'](?P<value>[^\"']+)", re.I)


def stated_level(text: str | None) -> str | None:
    """The contest level an extraction reply names on a `Level: X` line or a JSON "level" key.

    The last level line that names exactly one known contest level wins (models restate the
    question before answering it); None when no line does.
    """
    if not text:
        return None
    text = re.sub(r"<think>.*?</think>", "", text, flags=re.S)
    found = None
    for match in _LEVEL_LINE_RE.finditer(text):
        found = match_level(match["value"]) or found
    if found is None:
        json_level = _JSON_LEVEL_RE.search(text)
        found = match_level(json_level["value"]) if json_level else None
    return found
