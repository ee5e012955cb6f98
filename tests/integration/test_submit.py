"""A real Ray job submission: a local two-node cluster (head + worker on loopback ports, token
authentication on) started by cluster/local/start.sh, the synthesize job submitted with
`promptcot-ray submit --wait`, outputs checked in the S3 run directory, the cluster stopped by
the PIDs it recorded (never `ray stop`)."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from promptcot_ray.storage import RunDir

from ..conftest import TEST_SECRET
from .helpers import LOCAL_CONFIG, REPO, cli, cli_overrides, outcome_ids, wait_for_results

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
        cli(*args),
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


NODE_LOSS_SETS = [
    "combinations.num_combinations=2000",
    "combinations.temperature=2.0",  # few duplicates: many engine rows, many result files
    "pool.embedding=hashed",
    "checkpoint_rows=16",
]


def _kill_node(leader: int) -> int:
    """SIGKILL every process of one node (its session: `ray start`, raylet, agents, workers),
    as a lost machine; how many were killed."""
    import psutil

    victims = []
    for proc in psutil.process_iter():
        try:
            if os.getsid(proc.pid) == leader:
                victims.append(proc)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    for proc in victims:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    return len(victims)


def test_a_worker_node_killed_mid_synthesize_loses_and_doubles_no_row(
    local_cluster, ray_cluster, s3_env, tmp_path
):
    """Issue #17: the worker node of the two-node cluster dies mid-round (every process of
    it SIGKILLed); the submitted job finishes (Ray retries the lost tasks on the head), or a
    re-submission does, with exactly the combinations an uninterrupted run decides."""
    from promptcot_ray.config import load_config
    from promptcot_ray.synthesis.config import SynthesizeConfig
    from promptcot_ray.synthesis.job import run

    state, client_env = local_cluster
    run_dir = f"s3://{s3_env['bucket']}/node-lost"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        **client_env,
        "AWS_ENDPOINT_URL": s3_env["endpoint"],
    }
    rehearsal = [
        f"{llm}.{key}=rehearsal"
        for llm in ("generator", "judges.0.llm", "judges.1.llm")
        for key in ("engine", "model")
    ]
    sets = [f"storage.run_dir={run_dir}", *NODE_LOSS_SETS, *rehearsal]

    def submit(submission_id: str) -> list[str]:
        args = [a for s in sets for a in ("--set", s)]
        return cli(
            "submit",
            "synthesize",
            "--config",
            str(LOCAL_CONFIG.relative_to(REPO)),
            *args,
            "--no-install",
            "--secret",
            "AWS_SECRET_ACCESS_KEY",
            "--secret",
            "AWS_ACCESS_KEY_ID",
            "--submission-id",
            submission_id,
            "--wait",
        )

    log_path = tmp_path / "node-lost.log"
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            submit("promptcot-test-node-lost"), cwd=REPO, env=env, stdout=log, stderr=log
        )
        try:
            wait_for_results(proc, run_dir, 3, log_path, poll_s=0.2)
            assert not RunDir(run_dir).is_complete("synthesis/round-0")  # mid-round
            assert _kill_node(int((state / "worker.pid").read_text())) >= 2
            code = proc.wait(timeout=900)
        finally:
            if proc.poll() is None:
                proc.kill()
    first = log_path.read_text()
    if code != 0:  # allowed: the job failed with the node; a re-submission must finish
        again = _promptcot(env, *submit("promptcot-test-node-lost-again")[3:])
        assert again.returncode == 0, first[-3000:] + again.stdout[-3000:] + again.stderr[-3000:]

    reference = str(tmp_path / "reference")
    cfg = load_config(SynthesizeConfig, LOCAL_CONFIG, [*sets, f"storage.run_dir={reference}"])
    run(cfg)  # the same round uninterrupted, in this process's Ray
    ids = outcome_ids(run_dir)
    assert len(ids) == len(set(ids))  # none decided twice
    assert sorted(ids) == sorted(outcome_ids(reference))  # none lost
    for name in ("accepted", "rejected"):
        mine = RunDir(run_dir).read_table(f"synthesis/round-0/{name}", columns=["id"])
        ref = RunDir(reference).read_table(f"synthesis/round-0/{name}", columns=["id"])
        assert sorted(mine.column("id").to_pylist()) == sorted(ref.column("id").to_pylist())
