"""Rejection sampling: how the judges' verdicts combine in each acceptance mode."""

from __future__ import annotations

import pytest

from promptcot_ray import records as R
from promptcot_ray.parsing import parse_judgement
from promptcot_ray.synthesis.stages import judge_column
from promptcot_ray.synthesis.verdict import decide

JUDGES = ("a", "b")


def _row(*verdicts, draft_status=R.STATUS_OK, judge_reason=R.REASON_JUDGE_UNPARSEABLE):
    row = {"draft_status": draft_status, "draft_reason": None}
    if draft_status != R.STATUS_OK:
        row["draft_reason"] = R.REASON_DRAFT_MISSING_PROBLEM
    for i, v in enumerate(verdicts):
        row[judge_column(i, "verdict")] = v
        row[judge_column(i, "status")] = R.STATUS_OK if v else R.STATUS_FILTERED
        row[judge_column(i, "reason")] = None if v else judge_reason
    return row


@pytest.mark.parametrize(
    ("verdicts", "mode", "accepted", "reason", "by"),
    [
        (("perfect", "perfect"), "only_perfect", True, None, None),
        (("perfect", "acceptable"), "only_perfect", False, R.REASON_JUDGED_ACCEPTABLE, "b"),
        (("bad", "perfect"), "only_perfect", False, R.REASON_JUDGED_BAD, "a"),
        (("perfect", None), "only_perfect", False, R.REASON_JUDGE_UNPARSEABLE, "b"),
        (("perfect", "acceptable"), "lax", True, None, None),
        (("acceptable", "acceptable"), "lax", False, R.REASON_JUDGED_ACCEPTABLE, "a"),
        (("perfect", "bad"), "lax", False, R.REASON_JUDGED_BAD, "b"),
        (("perfect", None), "lax", False, R.REASON_JUDGE_UNPARSEABLE, "b"),
    ],
)
def test_modes(verdicts, mode, accepted, reason, by):
    d = decide(_row(*verdicts), JUDGES, mode)
    assert (d.accepted, d.reason, d.rejected_by) == (accepted, reason, by)
    assert (d.status == R.STATUS_OK) == accepted


def test_unparsed_draft_is_rejected_at_generation_with_its_reason():
    d = decide(_row(None, None, draft_status=R.STATUS_FILTERED), JUDGES, "lax")
    assert not d.accepted
    assert d.rejected_stage == R.STAGE_GENERATE
    assert d.reason == R.REASON_DRAFT_MISSING_PROBLEM


def test_judge_engine_error_is_counted_as_error():
    row = _row("perfect", None, judge_reason=R.REASON_JUDGE_ERROR)
    row[judge_column(1, "status")] = R.STATUS_ERROR
    d = decide(row, JUDGES, "only_perfect")
    assert (d.status, d.reason, d.rejected_by) == (R.STATUS_ERROR, R.REASON_JUDGE_ERROR, "b")


PERFECT_REPLY = "\n".join(f"{c.replace('_', ' ').title()}: Perfect - fine." for c in R.CRITERIA)
POOR_SOLVABILITY = PERFECT_REPLY.replace("Solvability: Perfect", "Solvability: Poor")


@pytest.mark.parametrize(
    ("second_reply", "reason"),
    [
        (PERFECT_REPLY, None),
        (POOR_SOLVABILITY, R.REASON_JUDGE_UNKNOWN_RATING),
        ("Verdict: perfect", R.REASON_JUDGE_NO_RATINGS),
        ("Solvability: Bad - no answer\nVerdict: perfect", R.REASON_JUDGED_BAD),
        (PERFECT_REPLY + "\nSolvability: Acceptable", R.REASON_JUDGE_CONFLICTING_RATINGS),
    ],
    ids=["both_perfect", "unknown_word", "verdict_only", "partial_but_bad", "rated_twice"],
)
def test_a_judge_reply_that_fails_closed_rejects_the_draft_in_both_modes(second_reply, reason):
    row = {"draft_status": R.STATUS_OK, "draft_reason": None}
    for i, reply in enumerate((PERFECT_REPLY, second_reply)):
        parsed = parse_judgement(reply)
        ok = parsed.verdict is not None and parsed.reason is None  # as CollectJudgement does
        row[judge_column(i, "verdict")] = parsed.verdict
        row[judge_column(i, "status")] = R.STATUS_OK if ok else R.STATUS_FILTERED
        row[judge_column(i, "reason")] = parsed.reason
    for mode in ("only_perfect", "lax"):
        d = decide(row, JUDGES, mode)
        assert (d.accepted, d.reason) == (reason is None, reason)
        assert d.rejected_by == (None if reason is None else "b")
