"""The CLI as a user meets it: help that explains, bad configs that say what is wrong."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from promptcot_ray.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_top_level_help_lists_every_job():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("synthesize", "concepts", "rationales", "make-tiny-model", "show-config"):
        assert command in result.output


def test_job_help_explains_options():
    result = runner.invoke(app, ["synthesize", "--help"])
    assert result.exit_code == 0
    assert "--config" in result.output and "--set" in result.output
    assert "resumes" in result.output


def test_misspelled_key_fails_before_anything_starts():
    result = runner.invoke(
        app,
        [
            "synthesize",
            "--config",
            str(REPO / "jobs/configs/local.yaml"),
            "--set",
            "generator.temprature=0.5",
        ],
    )
    assert result.exit_code == 2
    assert "generator.temprature" in result.output


def test_missing_config_file_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["concepts", "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2 and "not found" in result.output


def test_show_config_prints_resolved_yaml():
    result = runner.invoke(
        app,
        [
            "show-config",
            "synthesize",
            "--config",
            str(REPO / "jobs/configs/local.yaml"),
            "--set",
            "combinations.num_combinations=400000",
        ],
    )
    assert result.exit_code == 0
    assert "num_combinations: 400000" in result.output
    assert "judge_b" in result.output
    bad = runner.invoke(app, ["show-config", "nojob"])
    assert bad.exit_code == 2 and "unknown job" in bad.output
