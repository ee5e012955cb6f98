"""Shared fixtures. Integration fixtures start real components once per session: a local
Ray cluster, the tiny offline model, a moto S3 server on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FORMAT_STEPS = 500  # 200 stopped being enough (drafts and JSON verdicts failed to parse)
CACHE = REPO / ".cache"

# Keep torch from oversubscribing 2 cores, and compile vLLM's graphs once per machine.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("VLLM_CACHE_ROOT", str(CACHE / "vllm"))
# DeepSpeed compiles its CPU shared-memory op (~30 s) once per machine, not per test.
os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(CACHE / "torch_extensions"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")


@pytest.fixture(scope="session")
def tiny_model_path() -> Path:
    """The tiny random Llama, built offline once per session (about a second)."""
    from promptcot_ray.llm.tiny_model import build_tiny_model

    path = CACHE / "test-tiny-llama"
    if not (path / "model.safetensors").exists():
        build_tiny_model(path)
    return path


@pytest.fixture(scope="session")
def ray_cluster(aws_test_env):
    """One local Ray for all in-process integration tests (8 logical CPUs on 2 cores, so
    engine actors, helper stages and read/write tasks can all be scheduled). Its workers get
    the test S3 credentials: they read and write run directories on the moto server."""
    import ray

    ray.init(
        num_cpus=8,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": aws_test_env},
    )
    yield
    ray.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server():
    """moto's S3 server on 127.0.0.1, reached over real HTTP like any S3-compatible endpoint."""
    port = free_port()
    server = REPO / ".venv" / "bin" / "moto_server"
    exe = [str(server)] if server.exists() else [sys.executable, "-m", "moto.server"]
    proc = subprocess.Popen(
        [*exe, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.time() + 30
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    else:
        proc.kill()
        pytest.fail("moto server did not start")
    yield endpoint
    proc.terminate()
    proc.wait(timeout=10)


TEST_SECRET = "testing-secret-value-xyz"


@pytest.fixture(scope="session")
def aws_test_env(s3_server):
    """Throwaway credentials and the moto endpoint, in this process's environment for the
    whole session (Ray workers inherit them through the cluster's runtime_env)."""
    env = {
        "AWS_ENDPOINT_URL": s3_server,
        "AWS_ACCESS_KEY_ID": "testing-key-id",
        "AWS_SECRET_ACCESS_KEY": TEST_SECRET,
        "AWS_REGION": "us-east-1",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    yield env
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture
def s3_env(s3_server, aws_test_env):
    """A fresh bucket on the moto server."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    bucket = f"bucket-{int(time.time() * 1000)}"
    client.create_bucket(Bucket=bucket)
    return {"endpoint": s3_server, "bucket": bucket, "client": client}


@pytest.fixture(scope="session")
def format_model_path() -> Path:
    """The tiny model taught the reply formats (~1-2 min once; cached across sessions), so
    concept lists, drafts, rationales and verdicts parse and every stage has work to do."""
    from promptcot_ray.llm.format_tuning import format_examples, teach_formats
    from promptcot_ray.llm.tiny_model import build_tiny_model
    from promptcot_ray.records import make_id

    key = make_id("format-model", FORMAT_STEPS, format_examples(10))  # prompts changed -> rebuild
    path = CACHE / "test-format-llama"
    marker = path / "FORMATS_TAUGHT"
    if not marker.exists() or marker.read_text().strip() != key:
        build_tiny_model(path)
        teach_formats(path, steps=FORMAT_STEPS)
        marker.write_text(key + "\n")
    return path
