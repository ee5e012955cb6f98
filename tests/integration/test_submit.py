"""A real Ray job submission: a local two-node cluster (head + worker on loopback ports, token
authentication on) started by cluster/local/start.sh, the synthesize job submitted with
`promptcot-ray submit --wait`, outputs checked in the S3 run directory, the cluster stopped by
the PIDs it recorded (never `ray stop`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from promptcot_ray.storage import RunDir

from ..conftest import TEST_SECRET
from .helpers import LOCAL_CONFIG, REPO, cli_overrides, outcome_ids

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text().splitlines():
        line = line.strip().removeprefix("export ").strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            env[key] = value.strip().strip("'\"")
    return env


@pytest.fixture(scope="module")
def local_cluster(tmp_path_factory, aws_test_env):
    """Head + worker node, started once for this module; the cluster's processes hold the S3
    credentials, as a cluster with IRSA would. Yields the client environment (address, token
    mode, token path)."""
    state = tmp_path_factory.mktemp("submit") / "cluster"
    env = {**os.environ, "PROMPTCOT_LOCAL_CLUSTER_DIR": str(state)}
    env.pop("RAY_AUTH_MODE", None)  # the tests' default is "disabled": the cluster uses tokens
    started = subprocess.run(
        ["bash", "cluster/local/start.sh"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    pids = _recorded_pids(state)
    try:
        assert started.returncode == 0, started.stdout[-3000:] + started.stderr[-3000:]
        assert len(pids) == 2, pids  # the head and the worker node
        client_env = _read_env_file(state / "env")
        assert client_env["RAY_AUTH_MODE"] == "token"
        yield state, client_env
    finally:
        subprocess.run(["bash", "cluster/local/stop.sh"], cwd=REPO, env=env, timeout=120)
    assert not any(_alive(int(pid)) for pid in pids), "stop.sh left a node running"
    assert not state.exists()


JOB_RECORD = """
import json, os, sys
from ray.job_submission import JobSubmissionClient
info = JobSubmissionClient(os.environ["RAY_ADDRESS"]).get_job_info(sys.argv[1])
print(json.dumps({"runtime_env": info.runtime_env, "metadata": info.metadata,
                  "entrypoint": info.entrypoint}))
"""


def _promptcot(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "promptcot_ray.cli", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


def _recorded_pids(state: Path) -> list[str]:
    return [p.read_text().strip() for p in state.glob("*.pid")] if state.exists() else []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "zombie" not in Path(f"/proc/{pid}/status").read_text()


def test_submit_wait_runs_synthesize_on_the_cluster(
    local_cluster, tiny_model_path, s3_env, local_run
):
    _, client_env = local_cluster
    run_dir = f"s3://{s3_env['bucket']}/submitted"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **client_env,
        "AWS_ENDPOINT_URL": s3_env["endpoint"],  # a setting: forwarded by name
    }
    done = _promptcot(
        env,
        "submit",
        "synthesize",
        "--config",
        str(LOCAL_CONFIG.relative_to(REPO)),
        *cli_overrides(tiny_model_path, run_dir),
        # submission is the subject: the rehearsal engine answers (no vLLM start on the
        # cluster); the combinations, so the ids decided, are the in-process run's
        *[
            arg
            for llm in ("generator", "judges.0.llm", "judges.1.llm")
            for key in ("engine", "model")
            for arg in ("--set", f"{llm}.{key}=rehearsal")
        ],
        "--no-install",  # the cluster's Python already has the project (this venv)
        "--secret",
        "AWS_SECRET_ACCESS_KEY",
        "--secret",
        "AWS_ACCESS_KEY_ID",
        "--submission-id",
        "promptcot-test-synthesize",
        "--wait",
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    assert "submitted synthesize as promptcot-test-synthesize" in output
    assert "job promptcot-test-synthesize SUCCEEDED" in output

    # the outputs are in the S3 run directory, with the ids the in-process run produced
    assert RunDir(run_dir).is_complete("synthesis/round-0")
    _, _, in_process_dir = local_run
    assert sorted(outcome_ids(run_dir)) == sorted(outcome_ids(in_process_dir))

    # the job is visible to `job status`, and no secret value reached the job's record/logs
    status = _promptcot(env, "job", "status", "promptcot-test-synthesize")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["status"] == "SUCCEEDED"
    logs = _promptcot(env, "job", "logs", "promptcot-test-synthesize")
    # the job's whole record, runtime_env included, read in a process of its own: Ray reads
    # its authentication settings once per process, and this one has auth disabled
    record = subprocess.run(
        [sys.executable, "-c", JOB_RECORD, "promptcot-test-synthesize"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert record.returncode == 0, record.stderr[-3000:]
    recorded = record.stdout
    assert "AWS_SECRET_ACCESS_KEY" in recorded  # named ...
    for text in (recorded, output, status.stdout, logs.stdout):
        assert TEST_SECRET not in text  # ... never inlined


def test_a_client_without_the_token_is_refused(local_cluster):
    _, client_env = local_cluster
    env = {**os.environ, "RAY_ADDRESS": client_env["RAY_ADDRESS"], "RAY_AUTH_MODE": "token"}
    env.pop("RAY_AUTH_TOKEN_PATH", None)
    env["RAY_AUTH_TOKEN"] = "wrong-token"
    done = _promptcot(env, "job", "status", "raysubmit_nope")
    assert done.returncode == 2
    assert "error:" in done.stderr + done.stdout
