"""One registry of jobs (job_configs.JOBS): the CLI's commands, the pipeline's stages and
`show-config` all come from it, so a job added there is a command, a stage and a config."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from promptcot_ray.cli import app
from promptcot_ray.config import load_config
from promptcot_ray.job_configs import JOB_CONFIGS, JOBS
from promptcot_ray.pipeline.config import PipelineConfig
from promptcot_ray.pipeline.stages import build_stages

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_every_job_runs_prints_and_fails_clearly():
    for spec in JOBS.values():
        module = spec.load()
        assert callable(module.run), spec.name
        assert all(issubclass(e, Exception) for e in getattr(module, "EXPECTED_ERRORS", ()))
        spec.print_summary  # noqa: B018 (bound method exists)
        import promptcot_ray.summary as summaries

        assert callable(getattr(summaries, spec.printer)), spec.printer


def test_every_job_is_a_command_with_its_help_and_the_shared_options():
    for name, spec in JOBS.items():
        result = runner.invoke(app, [name, "--help"], terminal_width=200)
        assert result.exit_code == 0, (name, result.output)
        assert spec.help.splitlines()[0].rstrip(".") in " ".join(result.output.split())
        for option in ("--config", "--set", "--verbose", "--rehearse"):
            assert option in result.output, (name, option)


def test_show_config_knows_every_job_and_the_pipeline():
    assert set(JOB_CONFIGS) == {*JOBS, "pipeline"}
    result = runner.invoke(app, ["show-config", "synthesise"])  # a typo
    assert result.exit_code == 2
    assert f"choose from {sorted(JOB_CONFIGS)}" in " ".join(result.output.split())
    shown = runner.invoke(app, ["show-config", "train", "--set", "base_model=gpt2"])
    assert shown.exit_code == 0 and "deepspeed:" in shown.output, shown.output


def test_the_pipeline_runs_only_registered_jobs(tmp_path):
    cfg = load_config(
        PipelineConfig,
        REPO / "jobs" / "configs" / "pipeline-local.yaml",
        [f"storage.run_dir={tmp_path / 'run'}"],
    )
    jobs = {stage.job for stage in build_stages(cfg)}
    assert jobs - {"generator-data", "report"} <= set(JOBS)  # the two built-in steps
    assert {"concepts", "synthesize", "train", "distill", "evaluate"} <= jobs


def test_the_pipeline_evaluates_into_the_students_folder_rehearsed_or_not(tmp_path):
    """eval/<student>/ whatever the model is called (a rehearsal's is `rehearsal`)."""
    from promptcot_ray.evaluate.job import eval_name

    path = REPO / "jobs" / "configs" / "pipeline-local.yaml"
    for rehearse in ("false", "true"):
        sets = [f"storage.run_dir={tmp_path / rehearse}", f"rehearse={rehearse}"]
        stages = build_stages(load_config(PipelineConfig, path, sets))
        evaluate = next(s for s in stages if s.job == "evaluate")
        assert eval_name(evaluate.config) == "student" and evaluate.marker == "eval/student"
