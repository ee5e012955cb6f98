"""Stage markers and the pipeline's done-check: a stage cut off between rewriting its outputs
and committing its marker is not skipped; an edited stage config re-runs that stage and
every later one (and `--list` says why); a run directory copied elsewhere keeps its ids and
its completed stages."""

from __future__ import annotations

import shutil

import pyarrow as pa
import pytest

from promptcot_ray import records as R
from promptcot_ray import stage_marker
from promptcot_ray.config import LLMConfig, config_hash, load_config
from promptcot_ray.distill import job as distill_job
from promptcot_ray.distill.config import DistillConfig
from promptcot_ray.evaluate import job as evaluate_job
from promptcot_ray.evaluate.config import EvaluateConfig
from promptcot_ray.model_paths import with_run_models
from promptcot_ray.pipeline.config import PipelineConfig
from promptcot_ray.pipeline.job import listing
from promptcot_ray.pipeline.stages import build_stages, invalidate, must_start_over, pending
from promptcot_ray.solve.stage import BuildSolveRequest
from promptcot_ray.storage import RunDir
from promptcot_ray.synthesis.stages import BuildGenerationRequest

from ..integration.helpers import REPO

PIPELINE = REPO / "jobs" / "configs" / "pipeline-local.yaml"


class Killed(Exception):
    """Stands in for the process dying while a job rewrites its outputs."""


def test_marker_carries_hash_counts_and_version_and_begin_removes_it(tmp_path):
    run = RunDir(str(tmp_path))
    info = stage_marker.commit(run, "distill", "h1", {"rows": 3})
    assert run.read_json("distill/_SUCCESS.json") == info
    assert info["config_hash"] == "h1" and info["counts"] == {"rows": 3}
    assert info["package_version"] == stage_marker.package_version() != ""
    assert stage_marker.why_not_done(run, "distill", "h1") is None
    assert stage_marker.why_not_done(run, "distill", "h2") == stage_marker.CONFIG_CHANGED
    run.write_json("rationales/_SUCCESS.json", {"rows": 3})  # an old marker without a hash
    assert stage_marker.why_not_done(run, "rationales", "h1") == stage_marker.NO_HASH
    run.write_text("quality/_SUCCESS.json", "{not json")
    assert stage_marker.why_not_done(run, "quality", "h1") == stage_marker.UNREADABLE
    stage_marker.begin(run, "distill")
    assert stage_marker.why_not_done(run, "distill", "h1") == stage_marker.NOT_COMPLETE


def _distill_cfg(run_dir, tmp_path) -> DistillConfig:
    problems = tmp_path / "problems.jsonl"
    problems.write_text('{"problem": "What is 1+1?"}\n{"problem": "What is 2+3?"}\n')
    sets = [f"storage.run_dir={run_dir}", "teacher.model=/models/teacher", f"problems={problems}"]
    return load_config(DistillConfig, REPO / "jobs/configs/distill-local.yaml", sets)


@pytest.mark.parametrize("killed", [True, False])
def test_distill_cut_off_while_rewriting_outputs_is_not_complete(tmp_path, monkeypatch, killed):
    run = RunDir(str(tmp_path / "run"))
    cfg = _distill_cfg(run.uri, tmp_path)
    stage_marker.commit(run, "distill", config_hash(cfg), {"sft_rows": 8})  # an earlier run
    solutions = pa.table(
        {
            R.ID: ["s1"],
            R.STATUS: [R.STATUS_OK],
            R.REASON: pa.array([None], pa.string()),
            "tokens_in": [5],
            "tokens_out": [7],
        }
    )
    run.write_table(f"{distill_job.SOLUTIONS_DIR}/part-0.parquet", solutions)
    monkeypatch.setattr(distill_job, "solve", lambda cfg, run, problems: (pa.array(["s1"]), 0))
    monkeypatch.setattr(distill_job, "label", lambda cfg, run, ids: None)

    def write_outputs(run, groups):
        run.delete_dir(distill_job.SFT_DIR)
        run.write_table(f"{distill_job.SFT_DIR}/part-0.parquet", pa.table({R.ID: ["half"]}))
        if killed:
            raise Killed  # labels/ and sft/ half rewritten, the ledger and marker not yet
        labels = pa.table({R.STATUS: [R.STATUS_OK], R.REASON: pa.array([None], pa.string())})
        return labels, pa.table({R.ID: ["half"]})

    monkeypatch.setattr(distill_job, "_write_outputs", write_outputs)
    if killed:
        with pytest.raises(Killed):
            distill_job.run(cfg)
        assert stage_marker.why_not_done(run, "distill", config_hash(cfg)) == "not complete"
    else:
        distill_job.run(cfg)
        assert stage_marker.why_not_done(run, "distill", config_hash(cfg)) is None
        assert stage_marker.read(run, "distill")["counts"]["sft_rows"] == 1


def test_evaluate_cut_off_while_regrading_is_not_complete(tmp_path, monkeypatch):
    run = RunDir(str(tmp_path / "run"))
    sets = [f"storage.run_dir={run.uri}", "model.model=/models/student", "difficulty=false"]
    cfg = load_config(EvaluateConfig, REPO / "jobs/configs/evaluate-local.yaml", sets)
    monkeypatch.chdir(REPO)  # the config's benchmark files are relative to the repository
    base = f"eval/{evaluate_job.eval_name(cfg)}"
    run.write_json(f"{base}/summary.json", {"benchmarks": {}})  # an earlier run's results
    stage_marker.commit(run, base, config_hash(cfg), {"samples": 8})
    monkeypatch.setattr(evaluate_job, "generate", lambda *a, **k: pa.table({R.ID: ["g1"]}))

    def grade(cfg, run, generations, samples):
        run.delete_dir(samples)
        raise Killed  # samples/ deleted, summary.json still the old one

    monkeypatch.setattr(evaluate_job, "grade", grade)
    with pytest.raises(Killed):
        evaluate_job.run(cfg)
    assert run.exists(f"{base}/summary.json")
    assert stage_marker.why_not_done(run, base, config_hash(cfg)) == "not complete"


def _pipeline(run_dir, *sets: str) -> PipelineConfig:
    return load_config(PipelineConfig, PIPELINE, [f"storage.run_dir={run_dir}", *sets])


def _complete_all(run: RunDir, cfg: PipelineConfig) -> None:
    for stage in build_stages(cfg):
        if stage.marker is not None:
            stage_marker.commit(run, stage.marker, stage.config_hash, {})


def test_an_edited_stage_config_reruns_it_and_everything_after(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)  # the pipeline config names its job configs relative to it
    run = RunDir(str(tmp_path / "run"))
    _complete_all(run, _pipeline(run.uri))
    run.write_text("models/student/checkpoints/checkpoint_0/state.pt", "old")
    assert [why for _, why in pending(build_stages(_pipeline(run.uri)), run)][:-1] == [None] * (
        len(build_stages(_pipeline(run.uri))) - 1
    )

    edited = _pipeline(run.uri, "distill.set.samples_per_problem=2")
    states = {stage.name: why for stage, why in pending(build_stages(edited), run)}
    assert states["quality"] is None and states["synthesize-1"] is None
    assert states["distill"] == "config changed"
    assert states["train-student"] == states["evaluate"] == "distill re-runs"
    lines = dict(line.split(None, 1) for line in listing(edited, run))
    assert lines["distill"] == "to do (config changed)"
    assert lines["evaluate"] == "to do (distill re-runs)"
    assert lines["quality"] == "complete"

    for stage, why in pending(build_stages(edited), run):  # what the pipeline does first
        if must_start_over(why):
            invalidate(run, stage)
    assert not run.is_complete("distill") and not run.is_complete("models/student/final")
    assert not run.exists("models/student/checkpoints")  # stale training is not resumed
    assert run.is_complete("problems") and run.is_complete("models/generator/final")
    # killed right after: the next run still re-runs distill and what follows
    states = {stage.name: why for stage, why in pending(build_stages(edited), run)}
    assert states["distill"] == states["evaluate"] == "not complete"


def test_a_copied_run_directory_keeps_ids_and_completed_stages(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    first = RunDir(str(tmp_path / "a" / "run"))
    first.write_text("models/gen/final/config.json", "{}")
    _complete_all(first, _pipeline(first.uri))
    shutil.copytree(first.root, tmp_path / "b" / "run")
    second = RunDir(str(tmp_path / "b" / "run"))
    # the pipeline skips every stage of the copy: no hash holds the run directory
    assert all(
        why is None or stage.marker is None
        for stage, why in pending(build_stages(_pipeline(second.uri)), second)
    )
    llm = LLMConfig(model="run:models/gen/final")
    located = [with_run_models(llm, run) for run in (first, second)]
    assert [m.source for m in located] == [
        first.uri_of("models/gen/final"),
        second.uri_of("models/gen/final"),
    ]
    combo = {"combination_id": "c1", "concepts": ["a", "b"], "level": "AMC10"}
    drafts = [BuildGenerationRequest(m)({**combo}) for m in located]
    assert drafts[0]["draft_id"] == drafts[1]["draft_id"]
    assert drafts[0]["generator_model"] == "run:models/gen/final"
    row = {"problem_id": "p1", "problem": "What is 1+1?", "sample_index": 0}
    solved = [BuildSolveRequest(m, "distill_solve", "Solve.", ())(row) for m in located]
    assert solved[0][R.ID] == solved[1][R.ID] and solved[0][R.MODEL] == "run:models/gen/final"


def test_an_old_marker_without_a_hash_reruns_only_its_own_stage(tmp_path, monkeypatch):
    monkeypatch.chdir(REPO)
    run = RunDir(str(tmp_path / "run"))
    cfg = _pipeline(run.uri)
    _complete_all(run, cfg)
    run.write_json("rationales/_SUCCESS.json", {"rows": 3})  # as earlier versions wrote it
    states = {stage.name: why for stage, why in pending(build_stages(cfg), run)}
    assert states["rationales"] == "marker holds no config hash"
    assert states["train-generator"] is None and states["evaluate"] is None
    assert not must_start_over(states["rationales"])  # nothing is deleted for it


def test_samples_of_a_retrained_run_model_are_not_mixed_with_the_old_ones(tmp_path):
    from promptcot_ray.config import ConfigError
    from promptcot_ray.solve.stage import check_generation_settings

    run = RunDir(str(tmp_path / "run"))
    run.write_json("models/student/final/_SUCCESS.json", {"steps": 10, "final_loss": 1.5})
    llm = LLMConfig(model="run:models/student/final")
    check_generation_settings(run, "eval/student/generations", with_run_models(llm, run), "")
    shutil.copytree(run.root, tmp_path / "copy")  # a copy keeps the export: resumes
    copy = RunDir(str(tmp_path / "copy"))
    check_generation_settings(copy, "eval/student/generations", with_run_models(llm, copy), "")
    run.write_json("models/student/final/_SUCCESS.json", {"steps": 20, "final_loss": 0.9})
    retrained = with_run_models(llm, run)  # same name, another export
    assert retrained.model == llm.model
    with pytest.raises(ConfigError, match="export"):
        check_generation_settings(run, "eval/student/generations", retrained, "")


def test_the_lineage_model_column_rides_through_the_engine_under_another_name():
    """ray.data.llm loads a row's `model` as a LoRA adapter when it differs from the engine's
    model (a run: name as written always does): it is parked, then restored."""
    from promptcot_ray.llm.engine import _ParkModel, _RestoreModel

    def build(row):
        return {**row, "messages": [{"role": "user", "content": "hi"}]}

    def collect(row):
        return {R.ID: row[R.ID], R.MODEL: row[R.MODEL], "text": row["generated_text"]}

    request = _ParkModel(build)({R.ID: "a", R.MODEL: "run:models/gen/final"})
    assert R.MODEL not in request  # what the vLLM stage sees
    ok = _RestoreModel(collect)({**request, "generated_text": "4"})
    assert ok == {R.ID: "a", R.MODEL: "run:models/gen/final", "text": "4"}
    failed = _RestoreModel(None)({**request, "__inference_error__": "boom"})  # skipped post
    assert failed[R.MODEL] == "run:models/gen/final"


def test_a_student_with_no_distilled_rows_is_told_why_before_training(tmp_path):
    """Distillation that labelled nothing (all ties on a small run) leaves distill/sft
    empty; the pipeline says so and what to change, not the train job's 'nothing at'."""
    from promptcot_ray import layout, stage_marker
    from promptcot_ray.pipeline.job import PipelineError, _check_student_data

    run = RunDir(str(tmp_path / "run"))
    _check_student_data(run)  # no distill marker yet: the train job's own check speaks
    stage_marker.commit(run, layout.DISTILL, "h", {"problems": 2, "samples": 8, "sft_rows": 0})
    with pytest.raises(PipelineError) as err:
        _check_student_data(run)
    message = str(err.value)
    assert "distill made no SFT rows from its 2 problems" in message
    assert "distill.samples_per_problem" in message and "distill.min_confidence" in message
    stage_marker.commit(run, layout.DISTILL, "h", {"problems": 2, "samples": 8, "sft_rows": 3})
    _check_student_data(run)  # rows to learn from: nothing to say
