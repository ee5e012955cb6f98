"""Finalize: results rows -> drafts, judgements, accepted, rejected, with exact counts."""

from __future__ import annotations

import pyarrow as pa

from promptcot_ray import records as R
from promptcot_ray.config import LLMConfig
from promptcot_ray.storage import RunDir
from promptcot_ray.synthesis.config import JudgeConfig
from promptcot_ray.synthesis.outputs import finalize
from promptcot_ray.synthesis.stages import JUDGE_FIELDS, judge_column
from promptcot_ray.table_schemas import results_schema

JUDGES = (
    JudgeConfig(name="a", llm=LLMConfig(model="ja")),
    JudgeConfig(name="b", llm=LLMConfig(model="jb")),
)


def _result(i: int, draft_ok: bool, verdicts: tuple, accepted: bool, reason: str | None) -> dict:
    row = {
        "combination_id": f"c{i}",
        "combination_index": i,
        "concepts": ["x", "y"],
        "level": "AIME",
        "pool_version": "p",
        "sampler_seed": 0,
        "draft_id": f"d{i}",
        "generator_model": "g",
        "generator_prompt_version": "generator-v1",
        "generation_seed": 7,
        "draft_text": "t",
        "rationale": "r" if draft_ok else None,
        "problem": "p" if draft_ok else None,
        "draft_tokens_in": 10,
        "draft_tokens_out": 5,
        "draft_status": R.STATUS_OK if draft_ok else R.STATUS_FILTERED,
        "draft_reason": None if draft_ok else R.REASON_DRAFT_MISSING_BOTH,
        "draft_error": None,
    }
    for j in range(2):
        row.update({judge_column(j, f): None for f in JUDGE_FIELDS})
        if draft_ok:
            v = verdicts[j]
            row.update(
                {
                    judge_column(j, "id"): f"j{i}{j}",
                    judge_column(j, "model"): f"m{j}",
                    judge_column(j, "verdict"): v,
                    judge_column(j, "tokens_in"): 3,
                    judge_column(j, "tokens_out"): 2,
                    judge_column(j, "ratings"): "{}",
                    judge_column(j, "status"): R.STATUS_OK if v else R.STATUS_FILTERED,
                    judge_column(j, "reason"): None if v else R.REASON_JUDGE_UNPARSEABLE,
                }
            )
    stage = None if accepted else (R.STAGE_GENERATE if not draft_ok else R.STAGE_JUDGE)
    row.update(
        accepted=accepted,
        status=R.STATUS_OK if accepted else R.STATUS_FILTERED,
        reason=reason,
        rejected_stage=stage,
        rejected_by=None if accepted or not draft_ok else "b",
    )
    return row


def test_finalize_splits_counts_and_drops_duplicate_ids(tmp_path):
    run = RunDir(str(tmp_path))
    rows = [
        _result(0, True, ("perfect", "perfect"), True, None),
        _result(1, True, ("perfect", None), False, R.REASON_JUDGE_UNPARSEABLE),
        _result(2, False, (), False, R.REASON_DRAFT_MISSING_BOTH),
    ]
    schema = results_schema(2)
    run.write_table("r/results/part-a.parquet", pa.Table.from_pylist(rows, schema=schema))
    # the same row written twice (e.g. a retried task): counted once
    run.write_table("r/results/part-b.parquet", pa.Table.from_pylist(rows[:1], schema=schema))
    combos = pa.table(
        {
            R.ID: ["c0", "c1", "c2", "c3"],
            R.SEED: [0] * 4,
            R.SAMPLE_INDEX: [0, 1, 2, 3],
            R.STATUS: [R.STATUS_OK] * 3 + [R.STATUS_FILTERED],
            R.REASON: [None] * 3 + [R.REASON_DUPLICATE_COMBINATION],
        }
    )
    counts = finalize(run, "r", JUDGES, 0, combos)
    assert counts.accepted == 1 and counts.parsed == 2 and counts.drafts == 3
    assert dict(counts.rejected) == {
        R.REASON_JUDGE_UNPARSEABLE: 1,
        R.REASON_DRAFT_MISSING_BOTH: 1,
        R.REASON_DUPLICATE_COMBINATION: 1,
    }
    accepted = run.read_table("r/accepted").to_pylist()
    assert [a[R.ID] for a in accepted] == ["d0"]
    assert accepted[0][R.PARENT_IDS] == ["c0", "j00", "j01"]
    rejected = run.read_table("r/rejected")
    assert sorted(rejected["combination_id"].to_pylist()) == ["c1", "c2", "c3"]
    judgements = run.read_table("r/judgements")
    assert judgements.num_rows == 4  # two parsed drafts x two judges
    assert set(judgements["judge"].to_pylist()) == {"a", "b"}
    assert counts.tokens["generate_in"] == 30


def test_finalize_prefers_the_finished_copy_of_a_retried_row(tmp_path):
    run = RunDir(str(tmp_path))
    failed = _result(0, True, ("perfect", "perfect"), False, R.REASON_JUDGE_ERROR)
    failed[R.STATUS] = R.STATUS_ERROR
    schema = results_schema(2)
    run.write_table("r/results/part-a.parquet", pa.Table.from_pylist([failed], schema=schema))
    ok = _result(0, True, ("perfect", "perfect"), True, None)
    run.write_table("r/results/part-b.parquet", pa.Table.from_pylist([ok], schema=schema))
    combos = pa.table(
        {R.ID: ["c0"], R.SEED: [0], R.SAMPLE_INDEX: [0], R.STATUS: [R.STATUS_OK], R.REASON: [None]}
    )
    counts = finalize(run, "r", JUDGES, 0, combos)
    assert counts.accepted == 1 and not counts.rejected
