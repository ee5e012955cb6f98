"""Job submission as a user meets it: what is sent, what is refused, and why."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from typer.testing import CliRunner

from promptcot_ray.cli import app
from promptcot_ray.submission.client import entrypoint_command, resolve_address
from promptcot_ray.submission.entry import missing_secrets
from promptcot_ray.submission.runtime_env import (
    GPU_INSTALL,
    REQUIRED_SECRETS_VAR,
    SubmissionError,
    build_runtime_env,
    load_runtime_env_file,
)

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_shipped_runtime_env_installs_the_project_with_its_gpu_extra():
    base = load_runtime_env_file(REPO / "jobs" / "runtime_env.yaml")
    env = build_runtime_env(REPO, install=True, env_names=[], secret_names=[], base=base)
    assert env["pip"]["packages"] == [GPU_INSTALL]
    assert GPU_INSTALL.endswith("[gpu]")
    assert {".venv", ".cache", "runs", ".git"} <= set(env["excludes"])
    assert not any(
        k for k in env.get("env_vars", {}) if "SECRET" in k and k != REQUIRED_SECRETS_VAR
    )


def test_no_install_drops_the_pip_step():
    base = {"pip": {"packages": ["x"]}}
    env = build_runtime_env(REPO, install=False, env_names=[], secret_names=[], base=base)
    assert "pip" not in env


def test_settings_travel_by_name_and_secrets_only_by_name():
    environ = {
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9000",
        "AWS_SECRET_ACCESS_KEY": "s3cr3t-value",
        "MY_SETTING": "on",
    }
    env = build_runtime_env(
        REPO,
        install=False,
        env_names=["MY_SETTING", "UNSET_ONE"],
        secret_names=["AWS_SECRET_ACCESS_KEY", "OPENAI_API_KEY"],
        environ=environ,
    )
    assert env["env_vars"]["AWS_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert env["env_vars"]["MY_SETTING"] == "on"
    assert "UNSET_ONE" not in env["env_vars"]
    assert env["env_vars"][REQUIRED_SECRETS_VAR] == "AWS_SECRET_ACCESS_KEY,OPENAI_API_KEY"
    assert "s3cr3t-value" not in repr(env)


@pytest.mark.parametrize(
    "name", ["AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "HF_TOKEN", "OPENAI_API_KEY"]
)
def test_forwarding_a_secret_value_is_refused(name):
    with pytest.raises(SubmissionError, match="--secret"):
        build_runtime_env(
            REPO, install=False, env_names=[name], secret_names=[], environ={name: "v"}
        )


def test_a_secret_value_in_the_runtime_env_file_is_refused():
    base = {"env_vars": {"HF_TOKEN": "hf_abc"}}
    with pytest.raises(SubmissionError, match="HF_TOKEN"):
        build_runtime_env(REPO, install=False, env_names=[], secret_names=[], base=base)


def test_secret_takes_names_not_values():
    with pytest.raises(SubmissionError, match="names"):
        build_runtime_env(
            REPO, install=False, env_names=[], secret_names=["sk-live=abc"], environ={}
        )


def test_entrypoint_runs_the_jobs_script_with_quoted_overrides():
    command = entrypoint_command(
        "synthesize", Path("jobs/configs/local.yaml"), ["storage.run_dir=s3://b/r x"]
    )
    assert shlex.split(command) == [
        "python",
        "jobs/synthesize.py",
        "--config",
        "jobs/configs/local.yaml",
        "--set",
        "storage.run_dir=s3://b/r x",
    ]
    assert (REPO / "jobs" / "synthesize.py").exists()


def test_every_job_has_an_entrypoint_script():
    from promptcot_ray.job_configs import JOB_CONFIGS

    for job in JOB_CONFIGS:
        script = REPO / "jobs" / f"{job}.py"
        assert script.exists(), script
        assert f'run_job("{job}")' in script.read_text()


def test_address_comes_from_the_environment_and_must_be_http(monkeypatch):
    monkeypatch.delenv("RAY_API_SERVER_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_ADDRESS", "http://10.0.0.1:8265")
    assert resolve_address(None) == "http://10.0.0.1:8265"
    assert resolve_address("https://ray.example:443") == "https://ray.example:443"
    monkeypatch.setenv("RAY_ADDRESS", "10.0.0.1:6379")
    with pytest.raises(SubmissionError, match="8265"):
        resolve_address(None)
    monkeypatch.delenv("RAY_ADDRESS")
    with pytest.raises(SubmissionError, match="--address"):
        resolve_address(None)


def test_job_stops_at_start_when_a_named_secret_is_missing():
    environ = {REQUIRED_SECRETS_VAR: "A_TOKEN,B_KEY", "A_TOKEN": "x"}
    assert missing_secrets(environ) == ["B_KEY"]
    assert missing_secrets({}) == []


def test_submit_validates_the_config_before_sending_anything(tmp_path):
    result = runner.invoke(
        app,
        [
            "submit",
            "synthesize",
            "--config",
            str(REPO / "jobs/configs/local.yaml"),
            "--set",
            "generator.temprature=0.5",
            "--address",
            "http://127.0.0.1:9",
        ],
    )
    assert result.exit_code == 2 and "generator.temprature" in result.output


def test_submit_refuses_a_config_outside_the_uploaded_directory(tmp_path):
    outside = tmp_path / "mine.yaml"
    outside.write_text((REPO / "jobs/configs/local.yaml").read_text())
    result = runner.invoke(
        app,
        ["submit", "synthesize", "--config", str(outside), "--working-dir", str(REPO)],
        env={"RAY_ADDRESS": "http://127.0.0.1:9"},
    )
    assert result.exit_code == 2 and "outside the working directory" in result.output


def test_unreachable_job_server_is_a_clear_error():
    result = runner.invoke(
        app,
        ["job", "status", "raysubmit_x", "--address", "http://127.0.0.1:9"],
    )
    assert result.exit_code == 2
    assert "127.0.0.1:9" in result.output
