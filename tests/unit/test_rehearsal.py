"""The rehearsal engine's replies, run through each job's real preprocess and postprocess.

No Ray: `RehearseRows` is the row function the rehearsal processor maps over a dataset, so
calling it on plain dicts is exactly what each map task does.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from promptcot_ray import records as R
from promptcot_ray.concepts.extract import BuildConceptRequest, CollectConcepts
from promptcot_ray.config import LLMConfig
from promptcot_ray.llm.engine import INFERENCE_ERROR_COLUMN, build_processor
from promptcot_ray.llm.rehearsal import RehearsalProcessor, RehearseRows, reply_kind
from promptcot_ray.llm.rehearsal_config import REHEARSAL_MODEL, RehearsalConfig
from promptcot_ray.parsing import parse_judgement
from promptcot_ray.parsing.judgement_json import parse_judgement_json
from promptcot_ray.rationales.stages import BuildRationaleRequest, CollectRationale
from promptcot_ray.solve.solutions import REASON_TRUNCATED
from promptcot_ray.solve.stage import BuildSolveRequest, CollectSolution
from promptcot_ray.synthesis import stages as S
from promptcot_ray.synthesis.config import GeneratorConfig, JudgeConfig

N = 2000


def rehearsal_llm(**settings) -> LLMConfig:
    return LLMConfig(
        model=REHEARSAL_MODEL,
        engine="rehearsal",
        max_tokens=4096,
        rehearsal=RehearsalConfig(**settings),
    )


def combination(i: int) -> dict:
    return {
        "combination_id": f"c{i:05d}",
        "combination_index": i,
        "concepts": ["Vieta's formulas", "Pigeonhole principle", "Modular arithmetic"],
        "level": "AIME",
        "pool_version": "p1",
        "sampler_seed": 7,
    }


def drafts(n: int = N, **settings) -> list[dict]:
    gen = GeneratorConfig(model=REHEARSAL_MODEL, engine="rehearsal", max_tokens=2048)
    gen = gen.model_copy(update={"rehearsal": RehearsalConfig(**settings)})
    step = RehearseRows(gen.rehearsal, S.BuildGenerationRequest(gen), S.CollectDraft(2048))
    return [S.SettleDraft()(step(combination(i))) for i in range(n)]


def judged(rows: list[dict], reply_format: str, **settings) -> list[dict]:
    judge = JudgeConfig(name="j", llm=rehearsal_llm(**settings), reply_format=reply_format)
    carry = S.COMBINATION_COLUMNS + S.DRAFT_COLUMNS
    step = RehearseRows(
        judge.llm.rehearsal, S.BuildJudgeRequest(0, judge), S.CollectJudgement(0, carry, judge)
    )
    return [step(r) for r in rows]


def test_the_engine_setting_builds_the_stand_in_and_needs_the_rehearsal_model():
    processor = build_processor(rehearsal_llm(), S.SettleDraft(), S.SettleDraft())
    assert isinstance(processor, RehearsalProcessor)
    with pytest.raises(ValueError, match="engine 'rehearsal' and model 'rehearsal'"):
        LLMConfig(model="Qwen/Qwen2.5-7B-Instruct", engine="rehearsal")
    with pytest.raises(ValueError, match="sum to 1"):
        RehearsalConfig(judge_perfect_share=0.9)


def test_replies_are_deterministic_per_row():
    first, again = drafts(50), drafts(50)
    assert [r["draft_text"] for r in first] == [r["draft_text"] for r in again]
    assert len({r["problem"] for r in first if r["problem"]}) == sum(
        1 for r in first if r["problem"]
    )


def test_drafts_parse_at_the_configured_share_and_carry_token_counts():
    rows = drafts(draft_unparseable_share=0.2)
    reasons = Counter(r["draft_reason"] for r in rows)
    assert reasons[None] / N == pytest.approx(0.8, abs=0.03)
    # half the unparseable drafts ran out of tokens, half closed the rationale only
    assert reasons[R.REASON_GENERATION_TRUNCATED] / N == pytest.approx(0.1, abs=0.02)
    ok = [r for r in rows if r["draft_status"] == R.STATUS_OK]
    assert all(r["rationale"] and r["problem"] for r in ok)
    assert all(0 < r["draft_tokens_out"] < 2048 and r["draft_tokens_in"] > 50 for r in ok)
    assert all(r["generator_model"] == REHEARSAL_MODEL for r in rows)


@pytest.mark.parametrize("reply_format", ["free_text", "schema"])
def test_judge_verdicts_follow_the_shares_in_both_reply_formats(reply_format):
    shares = {"perfect": 0.5, "acceptable": 0.2, "bad": 0.2, "unparseable": 0.1}
    settings = {f"judge_{k}_share": v for k, v in shares.items()}
    rows = judged(drafts(draft_unparseable_share=0.0), reply_format, **settings)
    verdicts = Counter(r["judge_0_verdict"] for r in rows)
    for verdict in ("perfect", "acceptable", "bad"):
        assert verdicts[verdict] / N == pytest.approx(shares[verdict], abs=0.03)
    unparsed = [r for r in rows if r["judge_0_status"] == R.STATUS_FILTERED]
    assert len(unparsed) / N == pytest.approx(0.1, abs=0.02)
    parse = parse_judgement_json if reply_format == "schema" else parse_judgement
    for row in rows[:200]:  # the stored text parses to the stored verdict
        assert parse(row["judge_0_text"]).verdict == row["judge_0_verdict"]
    if reply_format == "schema":
        ok = next(r for r in rows if r["judge_0_verdict"] == "perfect")
        assert json.loads(ok["judge_0_text"])["verdict"] == "Perfect"


def test_skipped_drafts_get_a_one_token_reply_and_no_judgement():
    rows = judged(drafts(200, draft_unparseable_share=0.5), "free_text")
    skipped = [r for r in rows if r["draft_status"] != R.STATUS_OK]
    assert skipped and all(r["judge_0_verdict"] is None for r in skipped)


def test_concept_lists_parse_with_a_level():
    llm = rehearsal_llm()
    step = RehearseRows(llm.rehearsal, BuildConceptRequest(llm, 5), CollectConcepts(5, 3, 200))
    rows = [step({"seed_id": f"s{i}", "problem": "Find x.", "level": None}) for i in range(100)]
    assert all(r[R.STATUS] == R.STATUS_OK for r in rows), Counter(r[R.REASON] for r in rows)
    assert all(len(r["concepts"]) == 5 and r["level"] for r in rows)
    assert all(r[R.MODEL] == REHEARSAL_MODEL for r in rows)
    assert len({tuple(r["concepts"]) for r in rows}) > 50  # a pool needs variety


def test_rationales_parse_and_do_not_restate_the_problem():
    llm = rehearsal_llm()
    step = RehearseRows(llm.rehearsal, BuildRationaleRequest(llm), CollectRationale(0.5))
    row = {
        "extraction_id": "e1",
        "seed_id": "s1",
        "concepts": ["Modular arithmetic", "Pigeonhole principle"],
        "level": "AIME",
        "problem": "How many subsets of {1, ..., 10} contain no two consecutive integers?",
    }
    out = step(row)
    assert out[R.STATUS] == R.STATUS_OK, out[R.REASON]
    assert out["rationale"] and "Modular arithmetic" in out["rationale"]


def solutions(stage: str, carried: tuple = (), extra=None, **settings) -> list[dict]:
    llm = rehearsal_llm(**settings)
    pre = BuildSolveRequest(llm, stage, "Put the answer in \\boxed{}.", carried)
    step = RehearseRows(llm.rehearsal, pre, CollectSolution(llm.max_tokens, carried))
    return [
        step(
            {
                "problem_id": f"p{i // 4}",
                "problem": "Find x.",
                "sample_index": i % 4,
                **(extra or {}),
            }
        )
        for i in range(N)
    ]


def test_teacher_samples_agree_per_problem_at_the_share_and_some_are_cut_off():
    rows = solutions("distill", teacher_agreement_share=0.6, cutoff_share=0.1)
    reasons = Counter(r[R.REASON] for r in rows)
    assert reasons[REASON_TRUNCATED] / N == pytest.approx(0.1, abs=0.02)
    assert all(r["finish_reason"] == "length" for r in rows if r[R.REASON] == REASON_TRUNCATED)
    answers: dict[str, set] = {}
    for r in rows:
        if r["answer"] is not None:
            answers.setdefault(r["problem_id"], set()).add(r["answer"])
    agreeing = sum(1 for a in answers.values() if len(a) == 1)
    assert agreeing / len(answers) == pytest.approx(0.6, abs=0.08)  # a few 1-sample problems


def test_evaluation_answers_match_the_reference_at_the_share():
    rows = solutions(
        "evaluate", ("reference",), {"reference": "42"}, eval_correct_share=0.3, cutoff_share=0
    )
    right = sum(1 for r in rows if r["final_answer"] == "42")
    assert right / N == pytest.approx(0.3, abs=0.03)


def test_engine_errors_skip_postprocess_like_ray_data_llm():
    llm = rehearsal_llm(engine_error_share=0.25)
    gen = GeneratorConfig(model=REHEARSAL_MODEL, engine="rehearsal")
    step = RehearseRows(llm.rehearsal, S.BuildGenerationRequest(gen), S.CollectDraft(4096))
    rows = [S.SettleDraft()(step(combination(i))) for i in range(N)]
    errors = sum(1 for r in rows if r["draft_status"] == R.STATUS_ERROR)
    assert errors / N == pytest.approx(0.25, abs=0.03)
    assert INFERENCE_ERROR_COLUMN not in rows[0]


def test_an_unknown_stage_fails_loudly():
    with pytest.raises(RuntimeError, match=r"teach llm/rehearsal\.py"):
        reply_kind({"messages": [], "sampling_params": {}, "prompt_version": "new-v1"})
