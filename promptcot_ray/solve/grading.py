"""Final-answer extraction and equivalence checking (math-verify), with a hard timeout.

math-verify's own timeouts use `signal.alarm`, which fails off the main thread (Ray actors
run batches in threads) and, when that error is swallowed, scores everything wrong. So its
timeouts are switched off and each comparison runs in a small process pool instead: a
comparison that exceeds the limit has its worker killed and counts as wrong, with status
`timeout`, and the remaining items go to a fresh pool.

Public API (external checks call these; keep them stable): `extract_boxed`, `is_equivalent`.
"""

from __future__ import annotations

import logging
import multiprocessing
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

logger = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 5.0
Mode = Literal["math", "numeric"]
GRADE_OK = "ok"  # compared; `correct` says the outcome
GRADE_TIMEOUT = "timeout"  # the comparison ran past the limit: counted as wrong
GRADE_NO_ANSWER = "no_answer"  # nothing to compare (no boxed answer)
GRADE_ERROR = "error"  # the grader itself failed on this item: counted as wrong
# math-verify parsed nothing from the answer or the reference: not compared, so neither a
# right nor a wrong answer (`correct` is False; count these apart)
GRADE_UNPARSED = "unparsed"

_BOX_COMMANDS = ("\\boxed", "\\fbox")


def _braced(text: str, start: int) -> tuple[str, int] | None:
    """The balanced {...} group opening at text[start]; None when it never closes."""
    depth = 0
    for i in range(start, len(text)):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "{}":
            continue  # an escaped brace (\{ \}) does not open or close a group
        if ch == "{" and (i == 0 or text[i - 1] != "\\"):
            depth += 1
        elif ch == "}" and (i == 0 or text[i - 1] != "\\"):
            depth -= 1
            if depth == 0:
                return text[start + 1 : i], i + 1
    return None


def extract_boxed(text: str | None) -> str | None:
    """The content of the last `\\boxed{...}` or `\\fbox{...}` (nested braces handled).

    `\\boxed 5` (no braces) gives "5". None when there is no complete boxed answer.
    """
    if not text:
        return None
    found: str | None = None
    pattern = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
    for match in pattern.finditer(text):
        i = match.end()
        while i < len(text) and text[i] == " ":
            i += 1
        if i < len(text) and text[i] == "{":
            group = _braced(text, i)
            if group is not None:
                found = group[0].strip()
        elif i > match.end():  # `\boxed 5`: up to the next space or `$`
            bare = re.match(r"[^\s$]+", text[i:])
            if bare:
                found = bare.group(0)
    return found


# --- comparison (runs in the pool's worker processes) --------------------------------------

_LATEX_NOISE = re.compile(r"\\left|\\right|\\!|\\,|\\;|\\:|\\ |\\displaystyle|\\text\{\s*\}|\s+")


def _normalise(answer: str) -> str:
    text = _LATEX_NOISE.sub("", answer)
    text = text.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac")
    text = re.sub(r"\^\{?\\circ\}?|°", "", text)  # degrees: 30^\circ == 30
    return text.strip().rstrip(".").lower()


def _number(text: str) -> float | None:
    cleaned = re.sub(r"[,$\s]|\\!|\\,|\\\$", "", text).rstrip(".")
    cleaned = cleaned.removesuffix("\\%").removesuffix("%")
    try:
        return float(cleaned)
    except ValueError:
        return None


def _compare(predicted: str, reference: str, mode: Mode) -> tuple[bool, str]:
    """(equivalent, grade status) without any timeout of its own (the caller's pool
    enforces one); GRADE_UNPARSED when math-verify cannot read one of the two."""
    if mode == "numeric":
        a, b = _number(predicted), _number(reference)
        if a is not None and b is not None:
            return abs(a - b) <= 1e-6 * max(1.0, abs(b)), GRADE_OK
    if _normalise(predicted) == _normalise(reference):
        return True, GRADE_OK
    from math_verify import ExprExtractionConfig, LatexExtractionConfig, parse, verify

    configs = [LatexExtractionConfig(boxed_match_priority=0), ExprExtractionConfig()]

    def parsed(answer: str) -> list:
        return parse(f"\\boxed{{{answer}}}", extraction_config=configs, parsing_timeout=None)

    gold, pred = parsed(reference), parsed(predicted)
    if not gold or not pred:
        return False, GRADE_UNPARSED
    if verify(gold, pred, timeout_seconds=None):
        return True, GRADE_OK
    # percentages: 50\% against 50 (the reference often drops the sign)
    stripped = [s.replace("\\%", "").replace("%", "") for s in (predicted, reference)]
    if stripped != [predicted, reference]:
        return verify(parsed(stripped[1]), parsed(stripped[0]), timeout_seconds=None), GRADE_OK
    return False, GRADE_OK


def _compare_safe(args: tuple[str, str, str]) -> tuple[bool, str]:
    try:
        return _compare(*args)  # type: ignore[arg-type]
    except Exception as exc:  # sympy raises many types on odd input: count, do not crash
        return False, f"{GRADE_ERROR}: {type(exc).__name__}"


def _warm_up() -> None:
    """Import math-verify and sympy when a worker starts, so start-up (about a second, more
    under load) is not charged to the first comparison's timeout."""
    import math_verify  # noqa: F401


def _ready(_: int) -> bool:
    return True


# --- the pool ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Grade:
    correct: bool
    status: str  # GRADE_OK / GRADE_TIMEOUT / GRADE_NO_ANSWER / GRADE_UNPARSED / "error: Type"


class GradingPool:
    """A few worker processes that compare answers; a stuck one is killed, not waited on."""

    def __init__(self, processes: int = 1, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.processes, self.timeout_s = processes, timeout_s
        self._pool = None

    def _ensure(self):
        if self._pool is None:
            # spawn: a fork of a threaded Ray worker can deadlock on inherited locks
            self._pool = multiprocessing.get_context("spawn").Pool(
                self.processes, initializer=_warm_up
            )
            self._pool.map(_ready, range(self.processes), chunksize=1)  # start-up, untimed
        return self._pool

    def _reset(self) -> None:
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None

    def close(self) -> None:
        self._reset()

    def grade(self, items: Sequence[tuple[str | None, str, Mode]]) -> list[Grade]:
        """Grade (predicted, reference, mode) items; None predictions are `no_answer`."""
        grades: list[Grade | None] = [
            Grade(False, GRADE_NO_ANSWER) if p is None else None for p, _, _ in items
        ]
        todo = [i for i, g in enumerate(grades) if g is None]
        while todo:
            pool = self._ensure()
            pending = [(i, pool.apply_async(_compare_safe, (items[i],))) for i in todo]
            todo, reset = [], False
            for i, result in pending:
                if reset:  # the pool was killed: what was not collected yet is redone
                    todo.append(i)
                    continue
                try:
                    correct, status = result.get(timeout=self.timeout_s)
                    grades[i] = Grade(correct, status)
                except multiprocessing.TimeoutError:
                    logger.warning(
                        "grading timed out after %.1f s: %.80r vs %.80r",
                        self.timeout_s,
                        items[i][0],
                        items[i][1],
                    )
                    grades[i] = Grade(False, GRADE_TIMEOUT)
                    self._reset()
                    reset = True
        return [g for g in grades if g is not None]


_DEFAULT_POOL: GradingPool | None = None


def is_equivalent(
    predicted: str, reference: str, timeout_s: float = DEFAULT_TIMEOUT_S, mode: Mode = "math"
) -> bool:
    """Whether `predicted` is mathematically equivalent to `reference` (math-verify).

    Runs in a worker process with a hard `timeout_s`; a timeout counts as not equivalent.
    """
    global _DEFAULT_POOL
    if _DEFAULT_POOL is None or _DEFAULT_POOL.timeout_s != timeout_s:
        if _DEFAULT_POOL is not None:
            _DEFAULT_POOL.close()
        _DEFAULT_POOL = GradingPool(1, timeout_s)
    return _DEFAULT_POOL.grade([(predicted, reference, mode)])[0].correct
