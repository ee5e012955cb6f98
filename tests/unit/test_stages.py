"""The synthesize row functions on engine-shaped rows, without Ray or an engine."""

from __future__ import annotations

import json

from promptcot_ray import records as R
from promptcot_ray.config import LLMConfig
from promptcot_ray.llm.engine import INFERENCE_ERROR_COLUMN
from promptcot_ray.prompts.generator import format_completion
from promptcot_ray.prompts.judge import format_judgement_json
from promptcot_ray.synthesis import stages as S
from promptcot_ray.synthesis.config import JudgeConfig

LLM = LLMConfig(model="m", device="cpu", max_tokens=100, seed=3)
JUDGE = JudgeConfig(name="j", llm=LLM)  # the default: schema replies
COMBO = {
    "combination_id": "c1",
    "combination_index": 0,
    "concepts": ["Pigeonhole principle", "Modular arithmetic"],
    "level": "AIME",
    "pool_version": "p",
    "sampler_seed": 0,
}


def _generated(text: str, tokens_out: int = 20) -> dict:
    request = S.BuildGenerationRequest(LLM)(dict(COMBO))
    return {
        **request,
        "generated_text": text,
        "num_generated_tokens": tokens_out,
        "num_input_tokens": 30,
        INFERENCE_ERROR_COLUMN: "",
    }


def test_generation_request_is_deterministic_and_carries_lineage():
    a = S.BuildGenerationRequest(LLM)(dict(COMBO))
    b = S.BuildGenerationRequest(LLM)(dict(COMBO))
    assert a["draft_id"] == b["draft_id"] and a["sampling_params"]["seed"] == a["generation_seed"]
    assert "Pigeonhole principle" in json.dumps(a["messages"])
    other = S.BuildGenerationRequest(LLM)({**COMBO, "combination_id": "c2"})
    assert other["draft_id"] != a["draft_id"] and other["generation_seed"] != a["generation_seed"]


def test_collect_draft_parses_and_rejects():
    good = S.CollectDraft(100)(_generated(format_completion("Think.", "Find x.")))
    assert (good["draft_status"], good["rationale"], good["problem"]) == (
        R.STATUS_OK,
        "Think.",
        "Find x.",
    )
    bad = S.CollectDraft(100)(_generated("gibberish"))
    assert bad["draft_status"] == R.STATUS_FILTERED and bad["draft_reason"]
    cut = S.CollectDraft(100)(_generated("<!-- BEGIN RATIONALE --> long", tokens_out=100))
    assert cut["draft_reason"] == R.REASON_GENERATION_TRUNCATED


def test_engine_error_rows_become_counted_errors_with_full_columns():
    request = S.BuildGenerationRequest(LLM)(dict(COMBO))
    row = S.SettleDraft()({**request, INFERENCE_ERROR_COLUMN: "EngineDeadError: boom"})
    assert set(row) == set(S.COMBINATION_COLUMNS + S.DRAFT_COLUMNS)
    assert (row["draft_status"], row["draft_reason"]) == (R.STATUS_ERROR, R.REASON_GENERATION_ERROR)
    assert "boom" in row["draft_error"]


def test_judge_round_trip_and_skip():
    carry = S.COMBINATION_COLUMNS + S.DRAFT_COLUMNS
    draft = S.SettleDraft()(S.CollectDraft(100)(_generated(format_completion("T.", "P."))))
    request = S.BuildJudgeRequest(0, JUDGE)(draft)
    assert request["sampling_params"]["max_tokens"] == 100
    reply = format_judgement_json({c: "perfect" for c in R.CRITERIA}, "perfect")
    engine_row = {
        **request,
        "generated_text": reply,
        "num_generated_tokens": 9,
        "num_input_tokens": 50,
        INFERENCE_ERROR_COLUMN: "",
    }
    judged = S.SettleJudgement(0, carry)(S.CollectJudgement(0, carry, JUDGE)(engine_row))
    assert judged["judge_0_verdict"] == "perfect" and judged["judge_0_status"] == R.STATUS_OK

    failed = S.SettleDraft()(S.CollectDraft(100)(_generated("nope")))
    skip = S.BuildJudgeRequest(0, JUDGE)(failed)
    assert skip["sampling_params"]["max_tokens"] == 1 and skip["messages"] == S.SKIP_MESSAGES
    skipped = S.CollectJudgement(0, carry, JUDGE)({**skip, "generated_text": "x"})
    assert skipped["judge_0_status"] is None and skipped["judge_0_verdict"] is None


def test_judge_engine_error():
    carry = S.COMBINATION_COLUMNS + S.DRAFT_COLUMNS
    draft = S.SettleDraft()(S.CollectDraft(100)(_generated(format_completion("T.", "P."))))
    request = S.BuildJudgeRequest(1, JUDGE)(draft)
    row = S.SettleJudgement(1, carry)({**request, INFERENCE_ERROR_COLUMN: "timeout"})
    assert row["judge_1_status"] == R.STATUS_ERROR and row["judge_1_reason"] == R.REASON_JUDGE_ERROR
    assert "messages" not in row


def test_judgement_ids_survive_and_differ_between_judges_sharing_a_model():
    carry = S.COMBINATION_COLUMNS + S.DRAFT_COLUMNS
    draft = S.SettleDraft()(S.CollectDraft(100)(_generated(format_completion("T.", "P."))))
    reply = format_judgement_json({c: "perfect" for c in R.CRITERIA}, "perfect")
    ids, seeds = [], []
    for index in (0, 1):  # the same LLMConfig for both judges, as in local.yaml's anchor
        request = S.BuildJudgeRequest(index, JUDGE)(draft)
        row = {
            **request,
            "generated_text": reply,
            "num_generated_tokens": 9,
            "num_input_tokens": 50,
            INFERENCE_ERROR_COLUMN: "",
        }
        judged = S.SettleJudgement(index, carry)(S.CollectJudgement(index, carry, JUDGE)(row))
        ids.append(judged[S.judge_column(index, "id")])
        seeds.append(judged[S.judge_column(index, "seed")])
        assert judged[S.judge_column(index, "model")] == LLM.model
    assert all(ids) and ids[0] != ids[1] and seeds[0] != seeds[1]
