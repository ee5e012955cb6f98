"""Rejection sampling: combine the judges' verdicts into keep or a reason for dropping."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from promptcot_ray import records as R
from promptcot_ray.synthesis.cascade import rejected_before
from promptcot_ray.synthesis.stages import judge_column

Mode = Literal["only_perfect", "lax"]


@dataclass(frozen=True)
class Decision:
    """The outcome for one combination: accepted, or the stage, judge and reason that stopped it."""

    accepted: bool
    status: str
    reason: str | None
    rejected_stage: str | None
    rejected_by: str | None


ACCEPTED = Decision(True, R.STATUS_OK, None, None, None)


def _verdict_reason(verdict: str) -> str:
    return R.REASON_JUDGED_BAD if verdict == "bad" else R.REASON_JUDGED_ACCEPTABLE


def decide(row: dict[str, Any], judge_names: tuple[str, ...], mode: Mode) -> Decision:
    """Keep a draft only if the judges agree: every one perfect, or (lax) one perfect, none bad.

    A judge that failed or whose reply could not be parsed rejects the draft in both modes:
    we cannot know it was not "bad", and an unparseable reply is never counted as perfect.
    A judge the cascade skipped (no status) is passed over only when an earlier verdict
    already rejects the draft; otherwise its missing verdict rejects it (fail closed).
    """
    if row["draft_status"] != R.STATUS_OK:
        return Decision(False, row["draft_status"], row["draft_reason"], R.STAGE_GENERATE, None)
    judged: list[tuple[str, str]] = []
    for index, name in enumerate(judge_names):
        verdict = row.get(judge_column(index, "verdict"))
        if verdict is None:
            status = row.get(judge_column(index, "status"))
            if status is None and rejected_before(row, index, mode):
                continue  # skipped by the cascade: an earlier verdict below rejects the draft
            reason = row.get(judge_column(index, "reason")) or R.REASON_JUDGE_UNPARSEABLE
            return Decision(False, status or R.STATUS_FILTERED, reason, R.STAGE_JUDGE, name)
        judged.append((name, verdict))
    if mode == "only_perfect":
        for name, verdict in judged:
            if verdict != "perfect":
                return Decision(
                    False,
                    R.STATUS_FILTERED,
                    _verdict_reason(verdict),
                    R.STAGE_JUDGE,
                    name,
                )
        return ACCEPTED
    for name, verdict in judged:
        if verdict == "bad":
            return Decision(False, R.STATUS_FILTERED, R.REASON_JUDGED_BAD, R.STAGE_JUDGE, name)
    if any(verdict == "perfect" for _, verdict in judged):
        return ACCEPTED
    return Decision(
        False,
        R.STATUS_FILTERED,
        R.REASON_JUDGED_ACCEPTABLE,
        R.STAGE_JUDGE,
        judge_names[0],
    )


class DecideVerdict:
    """Map step: add the decision columns to each wide results row."""

    def __init__(self, judge_names: tuple[str, ...], mode: Mode) -> None:
        self.judge_names, self.mode = judge_names, mode

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        d = decide(row, self.judge_names, self.mode)
        row.update(
            accepted=d.accepted,
            status=d.status,
            reason=d.reason,
            rejected_stage=d.rejected_stage,
            rejected_by=d.rejected_by,
        )
        return row
