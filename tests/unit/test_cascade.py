"""The judge cascade: a later judge skips drafts already rejected, except an audited sample;
the verdict, the counts and the report's agreement follow."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa
import pytest

from promptcot_ray import records as R
from promptcot_ray.llm.engine import INFERENCE_ERROR_COLUMN
from promptcot_ray.prompts.generator import format_completion
from promptcot_ray.prompts.judge import format_judgement_json
from promptcot_ray.report.agreement import agreement
from promptcot_ray.report.collect import RoundData, RunData
from promptcot_ray.synthesis import stages as S
from promptcot_ray.synthesis.cascade import Cascade, audited, rejected_before
from promptcot_ray.synthesis.config import JudgeConfig, SynthesizeConfig
from promptcot_ray.synthesis.outputs import RoundCounts, count_rows
from promptcot_ray.synthesis.verdict import decide

from .test_stages import COMBO, LLM

JUDGES = (JudgeConfig(name="a", llm=LLM), JudgeConfig(name="b", llm=LLM))
CARRY = S.COMBINATION_COLUMNS + S.DRAFT_COLUMNS
NO_AUDIT = Cascade("only_perfect", 0.0)


def _draft(combination_id: str = "c1") -> dict:
    row = {**COMBO, "combination_id": combination_id}
    request = S.BuildGenerationRequest(LLM)(row)
    reply = {
        **request,
        "generated_text": format_completion("A rationale.", "A problem?"),
        "num_generated_tokens": 20,
        "num_input_tokens": 10,
    }
    return S.SettleDraft()(S.CollectDraft(100)(reply))


def _judge(row: dict, index: int, verdict: str, cascade: Cascade | None) -> tuple[dict, dict]:
    """Judge `index` on a row: (its engine request, the settled row after it)."""
    request = S.BuildJudgeRequest(index, JUDGES[index], cascade)(row)
    text = format_judgement_json(dict.fromkeys(R.CRITERIA, verdict), verdict)
    engine_row = {**request, "generated_text": text, "num_generated_tokens": 9}
    engine_row.update(num_input_tokens=50, **{INFERENCE_ERROR_COLUMN: ""})
    carry = CARRY + tuple(S.judge_column(i, f) for i in range(index) for f in S.JUDGE_FIELDS)
    collected = S.CollectJudgement(index, carry, JUDGES[index], cascade)(engine_row)
    return request, S.SettleJudgement(index, carry, cascade)(collected)


def _through_both(first: str, cascade: Cascade | None, combination_id: str = "c1"):
    _, row = _judge(_draft(combination_id), 0, first, cascade)
    request, row = _judge(row, 1, "perfect", cascade)
    return request, row


def test_second_judge_skips_a_draft_the_first_did_not_rate_perfect():
    request, row = _through_both("acceptable", NO_AUDIT)
    assert request["messages"] == S.SKIP_MESSAGES and request["sampling_params"]["max_tokens"] == 1
    assert row["judge_1_status"] is None and row["judge_1_verdict"] is None  # never judged
    d = decide(row, ("a", "b"), "only_perfect")
    assert (d.accepted, d.reason, d.rejected_by) == (False, R.REASON_JUDGED_ACCEPTABLE, "a")


def test_second_judge_still_judges_what_the_first_rated_perfect():
    request, row = _through_both("perfect", NO_AUDIT)
    assert request["messages"] != S.SKIP_MESSAGES and row["judge_1_verdict"] == "perfect"
    assert decide(row, ("a", "b"), "only_perfect").accepted


def test_without_a_cascade_every_judge_judges():
    request, row = _through_both("bad", None)
    assert request["messages"] != S.SKIP_MESSAGES and row["judge_1_status"] == R.STATUS_OK


def test_audited_drafts_are_judged_by_every_judge():
    request, row = _through_both("bad", Cascade("only_perfect", 1.0))
    assert request["messages"] != S.SKIP_MESSAGES and row["judge_1_verdict"] == "perfect"
    d = decide(row, ("a", "b"), "only_perfect")
    assert (d.reason, d.rejected_by) == (R.REASON_JUDGED_BAD, "a")


def test_a_failed_skip_request_is_not_counted_as_a_judge_error():
    _, row = _judge(_draft(), 0, "bad", NO_AUDIT)
    request = S.BuildJudgeRequest(1, JUDGES[1], NO_AUDIT)(row)
    carry = CARRY + tuple(S.judge_column(0, f) for f in S.JUDGE_FIELDS)
    settled = S.SettleJudgement(1, carry, NO_AUDIT)({**request, INFERENCE_ERROR_COLUMN: "boom"})
    assert settled.get("judge_1_status") is None


@pytest.mark.parametrize(
    ("first", "mode", "rejected"),
    [
        ("perfect", "only_perfect", False),
        ("acceptable", "only_perfect", True),
        ("bad", "only_perfect", True),
        (None, "only_perfect", True),  # unparseable: rejects in both modes
        ("acceptable", "lax", False),  # lax: a later perfect could still keep it
        ("bad", "lax", True),
        (None, "lax", True),
    ],
)
def test_rejected_before_follows_the_acceptance_mode(first, mode, rejected):
    row = {"judge_0_status": R.STATUS_OK if first else R.STATUS_FILTERED, "judge_0_verdict": first}
    assert rejected_before(row, 1, mode) is rejected
    assert rejected_before(row, 0, mode) is False  # nothing before the first judge


def test_a_missing_verdict_with_no_earlier_rejection_fails_closed():
    """A later judge with no judgement while the earlier one said perfect: never accepted."""
    _, row = _judge(_draft(), 0, "perfect", NO_AUDIT)
    row.update({S.judge_column(1, f): None for f in S.JUDGE_FIELDS})
    d = decide(row, ("a", "b"), "only_perfect")
    assert (d.accepted, d.reason, d.rejected_by) == (False, R.REASON_JUDGE_UNPARSEABLE, "b")


def test_audit_draw_is_stable_and_close_to_the_fraction():
    ids = [R.make_id("draft", i) for i in range(20_000)]
    drawn = [audited(i, 0.05) for i in ids]
    assert drawn == [audited(i, 0.05) for i in ids]  # a re-run picks the same drafts
    assert 0.04 < sum(drawn) / len(ids) < 0.06
    assert not any(audited(i, 0.0) for i in ids[:500]) and all(audited(i, 1.0) for i in ids[:500])


def test_cascade_is_on_by_default_under_only_perfect_with_two_judges():
    base = {"generator": LLM, "judges": JUDGES}
    assert SynthesizeConfig(**base).cascade_on
    assert not SynthesizeConfig(**base, acceptance="lax").cascade_on
    assert SynthesizeConfig(**base, acceptance="lax", cascade={"enabled": True}).cascade_on
    assert not SynthesizeConfig(**base, cascade={"enabled": False}).cascade_on
    assert not SynthesizeConfig(generator=LLM, judges=JUDGES[:1]).cascade_on  # moot
    with pytest.raises(ValueError, match="audit_fraction"):
        SynthesizeConfig(**base, cascade={"audit_fraction": 1.5})


def _results(rows: list[dict]) -> pa.Table:
    for row in rows:
        d = decide(row, ("a", "b"), "only_perfect")
        row.update(accepted=d.accepted, status=d.status, reason=d.reason)
        row.update(rejected_stage=d.rejected_stage, rejected_by=d.rejected_by)
    return pa.Table.from_pylist(rows)


def test_counts_say_how_many_judge_calls_were_saved():
    rows = [_through_both(v, NO_AUDIT, f"c{i}")[1] for i, v in enumerate(["bad", "perfect"] * 3)]
    counts = RoundCounts()
    count_rows(counts, _results(rows), JUDGES)
    assert counts.judge_calls_saved == {"b": 3}  # the three drafts judge a rated bad
    assert counts.accepted == 3 and counts.judge_rejected == {"a": {R.REASON_JUDGED_BAD: 3}}
    restored = RoundCounts.from_json(counts.to_json())
    assert restored.judge_calls_saved == {"b": 3}


def _round(judgements: list[tuple[str, str, str]], cascade: dict | None) -> RoundData:
    frame = pd.DataFrame(
        [(d, j, v, None, R.STATUS_OK) for d, j, v in judgements],
        columns=["draft_id", "judge", "verdict", "ratings", R.STATUS],
    )
    return RoundData(0, True, 10, 10, 10, frame, pd.DataFrame(), cascade=cascade)


def test_agreement_of_a_cascaded_round_uses_only_the_audited_drafts():
    """Drafts judge a rated perfect reach judge b too; using them would measure agreement on
    the drafts a liked. Only the audited drafts are compared, and the page is told so."""
    ids = [R.make_id("draft", i) for i in range(400)]
    sample = [d for d in ids if audited(d, 0.25)]
    rows = [(d, "a", "perfect") for d in ids] + [(d, "b", "perfect") for d in ids]
    rows += [(d, "b", "bad") for d in sample]  # b disagrees on the audited drafts only
    rows = [r for r in rows if not (r[1] == "b" and r[0] in sample and r[2] == "perfect")]
    run = RunData("mem://", [_round(rows, {"audit_fraction": 0.25})], [])
    (pair,) = agreement(run)
    assert pair.confusion.to_numpy().sum() == len(sample)
    assert int(pair.confusion.loc["perfect", "bad"]) == len(sample)
    assert pair.sample and f"{len(sample):,} audited drafts" in pair.sample
    plain = agreement(RunData("mem://", [_round(rows, None)], []))[0]
    assert plain.sample is None and plain.confusion.to_numpy().sum() == len(ids)
