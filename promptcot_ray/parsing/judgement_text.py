"""Read the rating structure of a judge's free-text reply: what each criterion was rated.

This module only collects observations; `judgements.parse_judgement` decides. It reads the
layouts instruct models write: `Criterion: Rating - why` lines (numbered, bulleted, bold,
several on one line joined by commas or pipes), a criterion heading followed by a
`Rating: X` line or a bare rating line, markdown tables with the rating in any column (or
the criteria as columns), and verdict lines (`Verdict:`, `Final Judgement:`, `Overall:`).
Only a value right after a label counts, so "perfect" in prose never rates anything.

Quoted examples are not answers: blockquote lines, quoted or backticked labelled spans
inside prose, and fenced blocks when the reply also answers outside them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from promptcot_ray.parsing.rating_words import RATING, UNKNOWN, classify
from promptcot_ray.records import CRITERIA

VERDICT = "verdict"  # the target of a verdict line, next to the five criteria

_CRITERION = (
    r"(?P<criterion>format|factual[\s-]*accuracy|difficulty[\s-]*alignment"
    r"|concepts?[\s-]*coverage|solvability)"
)
_VERDICT_LABEL = (
    r"(?P<verdict>(?:(?:the|my)\s+)?(?:(?:final|overall)\s+"
    r"(?:verdict|judge?ment|rating|assessment|evaluation|decision|score)|verdict|overall))"
)
_LABEL_RE = re.compile(
    r"(?:criteri(?:on|a)\s*+#?\d*+\s*+[:.)\-\u2013\u2014]?\s*+)?"
    r"(?:(?:rating|score|grade|assessment|evaluation)\s+(?:for|of)\s+(?:the\s+)?)?"
    rf"(?:{_CRITERION}|{_VERDICT_LABEL})"
    r"(?:\s+(?:rating|score|grade|assessment|evaluation))?\b",
    re.I,
)
# Possessive quantifiers (`*+`) keep whitespace runs from backtracking polynomially.
_SEP_RE = re.compile(r"\s*+(?:[:=|\-\u2013\u2014]++|[(\[])\s*+")
_IS_SEP_RE = re.compile(r"\s++is\s++", re.I)  # "Solvability is Bad", at a line's start only
# Labels are only tried where a segment starts, which also keeps long prose lines fast.
_SEGMENT_START_RE = re.compile(r"^|(?<=[,;|])\s*+|(?<=\.)\s++|\band\s++", re.I)
_SECTION_RATING_RE = re.compile(
    r"^(?:(?:my|the)\s+)?(?:rating|score|grade|assessment|evaluation|judge?ment)"
    r"\s*+[:=\-\u2013\u2014]++\s*+(?P<value>.*)$",
    re.I,
)
_MARKUP_RE = re.compile(r"~~[^~]*+~~|[*_`\"\u201c\u201d]+")  # struck-out text is withdrawn
# Heading hashes, list numbers, bullets and emoji marks ("- ", "2) ", "\u2705 ") before a label.
_LEADING_RE = re.compile(r"^\s*+(?:#{1,6}\s*+)?(?:(?:\d{1,2}[.)]|\(\d{1,2}\)|[^\w\s<(\[{|])\s*+)*")
_HEADING_RE = re.compile(r"^\s*+(?:#{1,6}\s|(\*\*|__)[^*_]+\1\s*+:?\s*+$)")
_QUOTE_LINE_RE = re.compile(r"^\s*+>")
_FENCE_RE = re.compile(r"^\s*+(?:```|~~~)")
_SPAN_RE = re.compile(r"`[^`\n]+`|\"[^\"\n]+\"|\u201c[^\u201d\n]+\u201d")
_TABLE_RULE_RE = re.compile(r"^\s*+\|?\s*+:?-{2,}")
_RATING_HEADER_RE = re.compile(
    r"(?:final\s+)?(?:rating|score|grade|judge?ment|assessment|evaluation|verdict|result)s?", re.I
)


@dataclass
class Reading:
    """What a reply said: ratings per target (a criterion or VERDICT), and unknown words."""

    ratings: dict[str, list[str]] = field(
        default_factory=lambda: {target: [] for target in (*CRITERIA, VERDICT)}
    )
    unknown: dict[str, list[str]] = field(
        default_factory=lambda: {target: [] for target in (*CRITERIA, VERDICT)}
    )

    def add(self, target: str, value: str, strict: bool = False) -> bool:
        """Record `value` for `target` if it is a rating or a rating-like word; True if so."""
        kind, word = classify(value, strict)
        if kind == RATING:
            self.ratings[target].append(word)
        elif kind == UNKNOWN:
            self.unknown[target].append(word)
        return kind in (RATING, UNKNOWN)

    def is_empty(self) -> bool:
        return not any(self.ratings.values()) and not any(self.unknown.values())


def normalize(line: str) -> str:
    """Remove emphasis, code and quote marks, heading hashes, list numbers and bullets."""
    return _LEADING_RE.sub("", _MARKUP_RE.sub("", line)).strip()


def _target(match: re.Match[str]) -> str:
    if match["verdict"]:
        return VERDICT
    squashed = re.sub(r"[^a-z]", "", match["criterion"].lower())
    return next(
        c for c in CRITERIA if c.replace("_", "") == squashed.replace("concepts", "concept")
    )


def mentions(line: str) -> list[tuple[str, str, int, bool]]:
    """Return (target, value, start, strict) for each segment-opening label of a normalized line.

    A label opens a segment at the line's start or after `,` `;` `|` `.` or "and", and must
    be followed by a separator (or end the line, as a heading does). Its value runs to the
    next such label on the line. "Solvability is Bad" is read strictly (a short value), so
    a sentence like "Solvability is perfect only if ..." rates nothing.
    """
    found: list[tuple[str, int, int, bool]] = []
    for segment in _SEGMENT_START_RE.finditer(line):
        match = _LABEL_RE.match(line, segment.end())
        if not match or (found and match.start() < found[-1][2]):
            continue
        start = match.start()
        sep = _SEP_RE.match(line, match.end())
        is_sep = not sep and not start and _IS_SEP_RE.match(line, match.end())
        if sep or is_sep:
            found.append((_target(match), start, (sep or is_sep).end(), bool(is_sep)))
        elif not start and not line[match.end() :].strip():
            found.append((_target(match), start, match.end(), False))
    ends = [start for _, start, _, _ in found[1:]] + [len(line)] if found else []
    return [
        (t, line[v:end].strip(), s, strict)
        for (t, s, v, strict), end in zip(found, ends, strict=True)
    ]


def _drop_example_spans(line: str) -> str:
    """Remove quoted or backticked labelled spans that follow prose: examples, not answers.

    "lines like `Format: Perfect - why`" quotes the format; a line that starts with a span
    ("- `Format: Perfect` - clean") is an answer written in code style, and is kept.
    """
    kept, done, after_prose = [], 0, False
    for span in _SPAN_RE.finditer(line):
        gap = line[done : span.start()]
        after_prose = after_prose or bool(
            re.search(r"[A-Za-z]", normalize(gap) if not done else gap)
        )
        labelled = any(value for _, value, _, _ in mentions(normalize(span[0][1:-1])))
        kept += [gap, " " if after_prose and labelled else span[0]]
        done = span.end()
    return "".join(kept) + line[done:] if kept else line


def _cells(row: str) -> list[str]:
    return [normalize(cell) for cell in row.strip().strip("|").split("|")]


def _label_target(cell: str) -> str | None:
    match = _LABEL_RE.fullmatch(cell.rstrip(":").strip())
    return _target(match) if match else None


def _read_table(rows: list[str], reading: Reading) -> None:
    """Read a markdown table: a row per criterion (rating in any column) or criteria as columns."""
    has_header = len(rows) > 1 and bool(_TABLE_RULE_RE.match(rows[1]))
    table = [_cells(row) for row in rows if not _TABLE_RULE_RE.match(row)]
    header = table[0] if has_header else []
    columns = [_label_target(cell) for cell in header]
    if sum(target not in (None, VERDICT) for target in columns) >= 2:
        for row in table[1:]:
            for target, cell in zip(columns, row, strict=False):
                if target:
                    reading.add(target, cell, strict=True)
        return
    rating_col = next((i for i, c in enumerate(header) if _RATING_HEADER_RE.match(c)), None)
    for row in table[1:] if has_header else table:
        _read_table_row(row, rating_col, reading)


def _read_table_row(row: list[str], rating_col: int | None, reading: Reading) -> None:
    """Rate the row's criterion (its first label cell) from the rating column, else any cell."""
    labelled = [(i, target) for i, cell in enumerate(row) if (target := _label_target(cell))]
    if not labelled:  # "Format: Perfect | Solvability: Bad" is a one-line list, not a table
        _read_mentions(" | ".join(row), reading)
        return
    label_col, target = labelled[0]
    if rating_col is not None:
        reading.add(target, row[rating_col] if rating_col < len(row) else "", strict=True)
        return
    for i, cell in enumerate(row):
        if i != label_col:
            reading.add(target, cell, strict=True)


def _read_mentions(line: str, reading: Reading) -> None:
    for target, value, _, strict in mentions(line):
        reading.add(target, value, strict)


def _is_table_line(raw: str) -> bool:
    return raw.count("|") >= 2 and raw.lstrip().startswith("|")


def _read_lines(lines: list[str], reading: Reading) -> None:
    """Walk the lines: tables, labelled lines, and sections under a criterion heading."""
    section: str | None = None  # the criterion whose heading we are under
    pending: str | None = None  # a label with no value: the next line may be its rating
    index = 0
    while index < len(lines):
        raw, index = lines[index], index + 1
        if _is_table_line(raw):
            block = [raw]
            while index < len(lines) and _is_table_line(lines[index]):
                block.append(lines[index])
                index += 1
            _read_table(block, reading)
            section = pending = None
            continue
        line = normalize(raw)
        if not line:
            continue
        found = mentions(line)
        if pending and not found and reading.add(pending, line, strict=True):
            pending = None
            continue
        pending = None
        if found:
            section, pending = _read_labelled(found, reading)
        elif section and (match := _SECTION_RATING_RE.match(line)):
            if not reading.add(section, match["value"]) and not match["value"].strip():
                pending = section
        elif _HEADING_RE.match(raw):
            section = None


def _read_labelled(
    found: list[tuple[str, str, int, bool]], reading: Reading
) -> tuple[str | None, str | None]:
    """Record a labelled line; return (section it opens, target awaiting a next-line value)."""
    for target, value, _, strict in found:
        reading.add(target, value, strict)
    criteria = [t for t, _, _, _ in found if t != VERDICT]
    first_target, _, first_start, _ = found[0]
    section = (
        first_target
        if len(criteria) == 1 and first_start == 0 and first_target != VERDICT
        else None
    )
    last_target, last_value, _, _ = found[-1]
    return section, (last_target if not last_value else None)


def read_judgement(answer: str) -> Reading:
    """Collect the ratings a judge's answer (thinking already removed) gives each target.

    Fenced blocks are examples when the reply answers outside them, and the answer itself
    when it does not (models often fence the requested lines).
    """
    lines = [_drop_example_spans(line) for line in answer.splitlines()]
    lines = [line for line in lines if not _QUOTE_LINE_RE.match(line)]
    outside, unwrapped, inside = [], [], False
    for line in lines:
        if _FENCE_RE.match(line):
            inside = not inside
            continue
        unwrapped.append(line)
        if not inside:
            outside.append(line)
    reading = Reading()
    _read_lines(outside, reading)
    if reading.is_empty() and len(outside) < len(unwrapped):
        reading = Reading()
        _read_lines(unwrapped, reading)
    return reading
