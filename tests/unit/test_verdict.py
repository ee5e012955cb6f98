"""Rejection sampling: how the judges' verdicts combine in each acceptance mode."""

from __future__ import annotations

import pytest

from promptcot_ray import records as R
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
