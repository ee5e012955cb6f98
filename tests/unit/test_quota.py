"""The quota round's stopping rule and extension arithmetic (issue #16)."""

from __future__ import annotations

import numpy as np
import pytest
from pydantic import ValidationError

from promptcot_ray.synthesis import quota as Q
from promptcot_ray.synthesis.config import QuotaConfig, SynthesizeConfig
from promptcot_ray.synthesis.quota_combinations import combination_keys

LEVELS = ("AMC12", "AIME", "USAMO")


def _progress(accepted=None, decided=None, **kw) -> Q.Progress:
    return Q.Progress(accepted=dict(accepted or {}), decided=dict(decided or {}), **kw)


def test_an_overall_target_is_met_only_when_enough_rows_are_accepted():
    quota = QuotaConfig(target_accepted=100)
    assert Q.stop_reason(quota, LEVELS, _progress({"AIME": 60, "AMC12": 39})) is None
    assert Q.stop_reason(quota, LEVELS, _progress({"AIME": 60, "AMC12": 40})) == Q.STOP_TARGET_MET


def test_per_level_targets_all_have_to_be_met_and_the_rest_goes_to_the_other_levels():
    quota = QuotaConfig(target_accepted=30, per_level={"AIME": 10, "USAMO": 5})
    assert Q.targets(quota, LEVELS) == {"AIME": 10, "USAMO": 5, Q.FREE: 15}
    # plenty accepted overall, but USAMO short: not done, and only USAMO is missing
    progress = _progress({"AMC12": 40, "AIME": 12, "USAMO": 4})
    assert Q.stop_reason(quota, LEVELS, progress) is None
    assert Q.remaining(quota, LEVELS, progress) == {"AIME": 0, "USAMO": 1, Q.FREE: 0}
    assert set(Q.wave_needs(quota, LEVELS, progress)) == {"USAMO"}  # full levels get none
    progress.accepted["USAMO"] = 5
    assert Q.stop_reason(quota, LEVELS, progress) == Q.STOP_TARGET_MET


def test_per_level_targets_alone_leave_no_room_for_other_levels():
    quota = QuotaConfig(per_level={"AIME": 4})
    assert quota.total == 4
    assert Q.targets(quota, LEVELS) == {"AIME": 4, Q.FREE: 0}
    assert Q.wave_needs(quota, LEVELS, _progress()).keys() == {"AIME"}


def test_the_first_wave_is_sized_by_the_expected_rate_then_by_the_rate_seen():
    quota = QuotaConfig(target_accepted=1000, expected_accept_rate=0.25, prior_weight=0)
    assert Q.wave_needs(quota, LEVELS, _progress()) == {Q.FREE: 4000}
    # 400 decided, 40 accepted: 10% seen, 960 missing -> 9,600 more
    seen = _progress({"AIME": 40}, {"AIME": 200, "AMC12": 200}, sent=400)
    assert Q.wave_needs(quota, LEVELS, seen) == {Q.FREE: 9600}


def test_a_level_with_nothing_accepted_yet_still_gets_a_finite_wave():
    quota = QuotaConfig(per_level={"USAMO": 2}, prior_weight=0)
    # 0 of 1,000 accepted: the rate is taken as 1 in 1,001, not 0 (no division by zero)
    assert Q.wave_needs(quota, LEVELS, _progress({}, {"USAMO": 1000})) == {"USAMO": 2002}


def test_budgets_cap_the_wave_and_then_end_the_round():
    quota = QuotaConfig(target_accepted=1000, max_combinations=1500, prior_weight=0)
    assert sum(Q.wave_needs(quota, LEVELS, _progress(sent=1200)).values()) == 300
    assert Q.stop_reason(quota, LEVELS, _progress(sent=1500)) == Q.STOP_COMBINATION_BUDGET
    tokens = QuotaConfig(target_accepted=1000, max_generated_tokens=10_000, prior_weight=0)
    # 100 tokens per decided combination so far, 2,000 tokens left -> 20 combinations
    spent = _progress({"AIME": 10}, {"AIME": 80}, sent=80, tokens=8000)
    assert sum(Q.wave_needs(tokens, LEVELS, spent).values()) == 20
    assert Q.stop_reason(tokens, LEVELS, _progress(tokens=10_000)) == Q.STOP_TOKEN_BUDGET


def test_a_gpu_hours_budget_caps_the_wave_at_the_measured_rate_then_ends_the_round():
    quota = QuotaConfig(target_accepted=1000, max_gpu_hours=10.0, prior_weight=0)
    # 8 GPU-hours for 400 decided combinations: 2 h left buy 100 more
    spent = _progress({"AIME": 40}, {"AIME": 400}, sent=400, gpu_hours=8.0)
    assert sum(Q.wave_needs(quota, LEVELS, spent).values()) == 100
    assert Q.stop_reason(quota, LEVELS, _progress(gpu_hours=10.0)) == Q.STOP_GPU_BUDGET
    assert Q.stop_reason(quota, LEVELS, _progress(gpu_hours=9.9)) is None


def test_held_gpus_and_the_clock_count_as_the_plan_prices(tmp_path, monkeypatch):
    """Replicas at their max x TP of every GPU vLLM pool; the clock adds each wave's wall
    time x those GPUs and keeps it in the round folder, so a re-run adds to it."""
    from promptcot_ray.config import LLMConfig
    from promptcot_ray.errors import UserError
    from promptcot_ray.storage import RunDir
    from promptcot_ray.synthesis import quota_round
    from promptcot_ray.synthesis.config import JudgeConfig

    cfg = SynthesizeConfig(
        generator=LLMConfig(model="g", replicas=[2, 8]),
        judges=(
            JudgeConfig(name="a", llm=LLMConfig(model="j", tensor_parallel_size=4, replicas=3)),
            JudgeConfig(name="b", llm=LLMConfig(model="k", device="cpu", replicas=5)),
        ),
    )
    assert quota_round.held_gpus(cfg) == 8 + 3 * 4  # the CPU judge holds none
    now = iter([100.0, 100.0 + 1800.0, 500.0, 500.0 + 900.0])
    monkeypatch.setattr(quota_round.time, "monotonic", lambda: next(now))
    run = RunDir(str(tmp_path))
    with quota_round.GpuClock(run, "round-0", 20) as clock:
        pass
    assert clock.hours == pytest.approx(10.0)  # half an hour x 20 GPUs
    with quota_round.GpuClock(run, "round-0", 20) as again:  # a re-run reads what was spent
        assert again.hours == pytest.approx(10.0)
    assert again.hours == pytest.approx(15.0)
    run.write_text("round-0/gpu-time.json", "{not json")
    with pytest.raises(UserError, match="GPU-hours so far are unknown"):
        quota_round.GpuClock(run, "round-0", 20)


def test_the_target_wins_over_a_spent_budget():
    quota = QuotaConfig(target_accepted=10, max_combinations=40)
    assert Q.stop_reason(quota, LEVELS, _progress({"AIME": 10}, sent=40)) == Q.STOP_TARGET_MET


def test_the_wave_cap_is_shared_in_proportion():
    quota = QuotaConfig(
        per_level={"AIME": 300, "USAMO": 100}, wave_combinations=100, prior_weight=0
    )
    needs = Q.wave_needs(quota, LEVELS, _progress({"AIME": 1, "USAMO": 1}, {"AIME": 4, "USAMO": 4}))
    assert needs == {"AIME": 75, "USAMO": 25}


def test_select_sends_fresh_rows_in_index_order_until_the_bucket_is_covered():
    buckets = np.array(["AIME", "AIME", Q.FREE, "AIME", Q.FREE, "AIME"])
    fresh = np.array([True, False, True, True, True, True])
    take = Q.select(buckets, fresh, {"AIME": 2, Q.FREE: 1})
    assert take.tolist() == [True, False, True, True, False, False]


def test_combination_keys_ignore_concept_order_and_tell_sets_apart():
    keys = combination_keys(np.array([[1, 2, 3], [3, 1, 2], [1, 2, 4], [0, 0, 0]]))
    assert keys[0] == keys[1]
    assert len({int(k) for k in keys}) == 3
    rng = np.random.default_rng(0)
    sets = np.unique(np.sort(rng.integers(0, 500, (20_000, 5)), axis=1), axis=0)
    assert len(np.unique(combination_keys(sets))) == len(sets)  # no collision here


def test_quota_configs_refuse_contradictions_before_any_engine_starts():
    with pytest.raises(ValidationError, match="give target_accepted, per_level, or both"):
        QuotaConfig()
    with pytest.raises(ValidationError, match="less than the per-level"):
        QuotaConfig(target_accepted=5, per_level={"AIME": 4, "USAMO": 4})
    llm = {"engine": "rehearsal", "model": "rehearsal"}
    judges = [{"name": "a", "llm": llm}]
    with pytest.raises(ValidationError, match="are not sampled"):
        SynthesizeConfig(
            generator=llm,
            judges=judges,
            combinations={"levels": ["AIME"]},
            quota={"per_level": {"USAMO": 3}},
        )


def test_the_400k_pipeline_gives_each_round_a_target_that_adds_up_to_400k():
    from pathlib import Path

    from promptcot_ray.config import load_config
    from promptcot_ray.pipeline.config import PipelineConfig
    from promptcot_ray.pipeline.stages import build_stages

    repo = Path(__file__).resolve().parents[2]
    cfg = load_config(PipelineConfig, repo / "jobs/configs/400k/pipeline.yaml")
    rounds = [s.config for s in build_stages(cfg) if s.job == "synthesize"]
    assert [r.round for r in rounds] == [0, 1]
    assert all(r.quota is not None for r in rounds)
    assert sum(r.quota.total for r in rounds) == 400_000
    assert all(r.quota.max_combinations for r in rounds)  # a budget bounds every round
    with pytest.raises(ValidationError, match="one target >= 1 per round"):
        PipelineConfig.model_validate({**cfg.model_dump(), "round_targets": [400_000]})


def test_distill_rounds_last_sends_only_the_last_rounds_accepted_to_the_gates(tmp_path):
    """`distill_rounds: last` forces quality.rounds to the last round; the quality job then
    reads only that round's accepted files."""
    from pathlib import Path

    import pyarrow as pa

    from promptcot_ray import layout
    from promptcot_ray.config import load_config
    from promptcot_ray.pipeline.config import PipelineConfig
    from promptcot_ray.pipeline.stages import build_stages
    from promptcot_ray.quality.job import accepted_files
    from promptcot_ray.storage import RunDir

    repo = Path(__file__).resolve().parents[2]
    path = repo / "jobs/configs/400k/pipeline.yaml"
    quality = {
        d: next(s.config for s in build_stages(cfg) if s.job == "quality")
        for d in ("all", "last")
        for cfg in [load_config(PipelineConfig, path, [f"distill_rounds={d}"])]
    }
    assert quality["all"].rounds is None and quality["last"].rounds == (1,)

    run = RunDir(str(tmp_path))
    for k in (0, 1):
        run.write_table(f"{layout.round_part(k, 'accepted')}/part-0.parquet", pa.table({"x": [k]}))
    assert len(accepted_files(run)) == 2
    (only,) = accepted_files(run, quality["last"].rounds)
    assert "round-1" in only
