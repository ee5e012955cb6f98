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


def test_help_paragraphs_reflow_and_lists_and_examples_keep_their_lines():
    from promptcot_ray.cli_help import reflow

    text = """First line.

    A paragraph written at one width
    and continued here.

    - an item
      that wraps
    - another item
    1. numbered

        promptcot-ray plan jobs/configs/400k/*.yaml
    """
    assert reflow(text) == (
        "First line.\n\nA paragraph written at one width and continued here.\n\n"
        "- an item that wraps\n- another item\n1. numbered\n\n"
        "    promptcot-ray plan jobs/configs/400k/*.yaml"
    )


def test_command_help_at_80_columns_breaks_only_where_the_terminal_ends(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    monkeypatch.setenv("TERMINAL_WIDTH", "80")
    result = runner.invoke(app, ["plan", "--help"])
    assert result.exit_code == 0
    lines = [line.strip() for line in result.output.splitlines()]
    start = next(i for i, line in enumerate(lines) if line.startswith("Sizes every stage"))
    end = next(i for i, line in enumerate(lines) if line.endswith("no model."))
    # a line cut at the docstring's own line ends leaves a stub such as "(combinations ="
    assert end - start >= 3 and all(len(line) > 60 for line in lines[start:end]), lines
