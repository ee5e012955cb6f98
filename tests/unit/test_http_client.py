"""The `engine: openai` session through Ray's own HTTP stage (HttpRequestUDF, no cluster)
against a local endpoint that fails on purpose: 429/5xx/dropped connections are retried,
Retry-After is honoured, a dead endpoint becomes counted error rows (not a failed task),
and the request rate stays under the configured limit."""

from __future__ import annotations

import asyncio

import pytest

from promptcot_ray.config import LLMConfig
from promptcot_ray.llm.engine import INFERENCE_ERROR_COLUMN, _FromChatResponse, http_policy
from promptcot_ray.llm.http_client import HttpPolicy, RateLimiter, SessionFactory
from tests.flaky_endpoint import FlakyEndpoint, max_in_window

FAST = HttpPolicy(max_retries=4, base_wait_s=0.01, timeout_s=30, max_wait_s=0.05)


def _reply(body: dict) -> dict:
    text = "echo: " + body["messages"][-1]["content"]
    return {
        "choices": [{"message": {"content": text}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2},
    }


@pytest.fixture
def endpoint():
    flaky = FlakyEndpoint(reply=_reply, retry_after_s=0)
    url = flaky.start()
    yield flaky, url
    flaky.stop()


def _run_stage(url: str, policy: HttpPolicy, n: int) -> list[dict]:
    """n rows through Ray's HttpRequestUDF with our session, then our response adapter."""
    from ray.llm._internal.batch.stages.http_request_stage import HttpRequestUDF

    udf = HttpRequestUDF(
        data_column="__data",
        expected_input_keys=["payload"],
        url=url + "/chat/completions",
        max_retries=0,
        session_factory=SessionFactory(policy),
    )
    rows = [
        {
            "id": f"r{i}",
            "payload": {"model": "m", "messages": [{"role": "user", "content": f"q{i}"}]},
        }
        for i in range(n)
    ]

    async def collect() -> list[dict]:
        out = []
        async for batch in udf({"__data": rows}):
            out.extend(batch["__data"])
        return out

    adapt = _FromChatResponse(lambda row: row)
    return [adapt(row) for row in asyncio.run(collect())]


def test_every_kind_of_transient_fault_is_retried_until_the_row_is_answered(endpoint):
    flaky, url = endpoint
    flaky.faults, flaky.faults_every = (429, 500, 502, 503, 504, "drop"), 2
    rows = _run_stage(url, FAST, 12)
    assert [r.get(INFERENCE_ERROR_COLUMN) for r in rows] == [None] * 12
    assert [r["generated_text"] for r in rows] == [f"echo: q{i}" for i in range(12)]
    assert {s.answered for s in flaky.injected()} == {429, 500, 502, 503, 504, "drop"}
    assert len(flaky.seen) == 12 + len(flaky.injected())  # one retry per injected fault


def test_a_dead_endpoint_gives_counted_error_rows_after_the_retries_not_a_failed_task(endpoint):
    flaky, url = endpoint
    flaky.down = True
    policy = HttpPolicy(max_retries=2, base_wait_s=0.01, timeout_s=30)
    rows = _run_stage(url, policy, 3)
    assert len(rows) == 3 and len(flaky.seen) == 3 * (2 + 1)
    for row in rows:
        assert "2 retries exhausted" in row[INFERENCE_ERROR_COLUMN]
        assert "HTTP 503" in row[INFERENCE_ERROR_COLUMN]


def test_a_client_error_is_not_retried_and_is_a_counted_error(endpoint):
    flaky, url = endpoint
    flaky.faults, flaky.faults_every = (400,), 1
    rows = _run_stage(url, FAST, 2)
    assert len(flaky.seen) == 2  # a 400 is the request's fault: sent once
    assert all("injected 400" in r[INFERENCE_ERROR_COLUMN] for r in rows)


def test_retry_after_is_honoured(endpoint):
    flaky, url = endpoint
    flaky.faults, flaky.faults_every, flaky.retry_after_s = (429,), 1, 1
    policy = HttpPolicy(max_retries=1, base_wait_s=0.01, timeout_s=30)
    _run_stage(url, policy, 1)
    first, retry = flaky.seen
    assert retry.at - first.at >= 0.9  # the server's 1 s, not the 10 ms backoff


def test_requests_per_second_is_a_ceiling_retries_included(endpoint):
    flaky, url = endpoint
    flaky.faults, flaky.faults_every = (503,), 4
    rate = 20.0
    rows = _run_stage(
        url, HttpPolicy(max_retries=3, base_wait_s=0.01, timeout_s=30, requests_per_second=rate), 30
    )
    assert all(r.get(INFERENCE_ERROR_COLUMN) is None for r in rows)
    times = [s.at for s in flaky.seen]
    assert max(times) - min(times) >= (len(times) - 1) / rate * 0.95
    assert max_in_window(times, 1.0) <= rate + 1


def test_the_configured_rate_is_shared_by_the_http_workers():
    llm = LLMConfig(
        model="judge",
        engine="openai",
        base_url="http://h/v1",
        concurrent_requests=4,
        requests_per_second=10,
        http_max_retries=3,
    )
    policy = http_policy(llm)
    assert policy.requests_per_second == 2.5 and policy.max_retries == 3
    assert (
        http_policy(llm.model_copy(update={"requests_per_second": None})).requests_per_second
        is None
    )


def test_backoff_doubles_is_jittered_and_capped():
    policy = HttpPolicy(max_retries=6, base_wait_s=1.0, timeout_s=30, max_wait_s=8.0)
    for attempt, ceiling in ((1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)):
        waits = [policy.backoff_s(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= w <= ceiling for w in waits)
    assert policy.backoff_s(1, retry_after=7.0) == 7.0
    assert policy.backoff_s(1, retry_after=10_000.0) == 120.0


def test_rate_limiter_spaces_starts_evenly():
    limiter = RateLimiter(50.0)

    async def starts() -> list[float]:
        loop = asyncio.get_running_loop()
        out = []
        for _ in range(11):
            await limiter.wait()
            out.append(loop.time())
        return out

    times = asyncio.run(starts())
    assert times[-1] - times[0] >= 10 / 50 * 0.95
