"""--rehearse on the shipped 400k configs, and the run directory's refusal to mix modes."""

from __future__ import annotations

import pytest

from promptcot_ray.config import LLMConfig, load_config
from promptcot_ray.job_configs import JOB_CONFIGS
from promptcot_ray.llm.rehearsal_config import REHEARSAL_MODEL
from promptcot_ray.pipeline.config import PipelineConfig
from promptcot_ray.pipeline.job import plan
from promptcot_ray.rehearsal import (
    MODE_FILE,
    RunModeError,
    _walk,
    check_run_mode,
    rehearsed,
    run_mode,
)
from promptcot_ray.storage import RunDir

CONFIGS = "jobs/configs/400k"
JOB_FILES = {
    "concepts": "concepts",
    "rationales": "rationales",
    "synthesize": "synthesize",
    "distill": "distill",
    "evaluate": "evaluate",
    "train": "train-generator",
}


def llms(cfg) -> list[LLMConfig]:
    return [m for m in _walk(cfg) if isinstance(m, LLMConfig)]


@pytest.mark.parametrize("job", sorted(JOB_FILES))
def test_rehearse_turns_every_model_use_of_a_400k_config_into_the_stand_in(job):
    cfg = load_config(JOB_CONFIGS[job], f"{CONFIGS}/{JOB_FILES[job]}.yaml")
    assert run_mode(cfg) == "real"
    out = rehearsed(cfg)
    assert run_mode(out) == "rehearsal"
    assert all(m.engine == "rehearsal" and m.model == REHEARSAL_MODEL for m in llms(out))
    assert len(llms(out)) == len(llms(cfg))
    assert out.storage == cfg.storage  # only the engines change, not where rows go


def test_rehearsed_training_runs_the_tiny_model_on_cpus():
    cfg = load_config(JOB_CONFIGS["train"], f"{CONFIGS}/train-student.yaml")
    out = rehearsed(cfg)
    assert out.rehearse and not out.use_gpu and out.precision == "fp32"
    assert out.num_workers <= 2 and out.data == cfg.data and out.epochs == cfg.epochs


def test_pipeline_rehearse_reaches_every_stage():
    cfg = load_config(PipelineConfig, f"{CONFIGS}/pipeline.yaml", ["rehearse=true"])
    stages = [s for s in plan(cfg) if s.config is not None]
    assert {s.job for s in stages} >= {"concepts", "synthesize", "train", "evaluate"}
    assert all(run_mode(s.config) in ("rehearsal", None) for s in stages)
    assert all(m.engine == "rehearsal" for s in stages for m in llms(s.config))


def test_a_run_directory_never_mixes_rehearsal_and_real_rows(tmp_path):
    run = RunDir(str(tmp_path / "rehearsed"))
    check_run_mode(run, "rehearsal")
    assert run.read_json(MODE_FILE) == {"mode": "rehearsal"}
    check_run_mode(run, "rehearsal")  # the same mode again: fine
    check_run_mode(run, None)  # a job without models (quality, report): fine
    with pytest.raises(RunModeError, match="holds rehearsal output and this is a real job"):
        check_run_mode(run, "real")

    real = RunDir(str(tmp_path / "real"))
    real.write_json("synthesis/round-0/stats.json", {})  # a run from before the mode file
    with pytest.raises(RunModeError, match="holds real output and this is a rehearsal job"):
        check_run_mode(real, "rehearsal")
    check_run_mode(real, "real")
    assert real.read_json(MODE_FILE) == {"mode": "real"}
