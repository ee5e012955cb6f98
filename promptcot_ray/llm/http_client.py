"""The HTTP session ray.data.llm's HTTP stage sends an `engine: openai` model's requests with:
retries with backoff on 429, 5xx and dropped connections, a requests-per-second limit, and
a counted error row (not a failed job) when an endpoint stays down.

Written here, not configured, because Ray 2.60's `HttpRequestUDF` cannot do three of these
(stages/http_request_stage.py): it retries only 408/429/502/503/504 (never a 500, which
OpenAI's own guidance says to retry), ignores `Retry-After`, and after its last retry raises
a RuntimeError that fails the whole Ray Data task and so the job, instead of one row. Its
`session_factory` hook lets this class stand in for `aiohttp.ClientSession`: the stage calls
`post(url, headers=..., data=...)`, awaits it and reads `status`, `reason` and `json()`.
With this session the stage is built with `max_retries=0` and `qps=None`: every retry and
every wait is decided here, once.
"""

from __future__ import annotations

import asyncio
import random
import time
from dataclasses import dataclass
from typing import Any

# Transient by HTTP's and OpenAI's account: throttled, timed out, or a server-side failure.
RETRYABLE_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
# A Retry-After longer than this is capped: a job should not sleep an hour on one header.
MAX_RETRY_AFTER_S = 120.0


@dataclass(frozen=True)
class HttpPolicy:
    """How one endpoint is called; built from an LLMConfig (llm/engine.py)."""

    max_retries: int  # LLMConfig.http_max_retries
    base_wait_s: float  # LLMConfig.http_retry_wait_s
    timeout_s: float  # LLMConfig.http_timeout_s
    # Requests per second this process may start (None: no limit). A pool of n HTTP workers
    # gives each 1/n of the configured total, so the endpoint never sees more than it.
    requests_per_second: float | None = None
    max_wait_s: float = 60.0

    def backoff_s(self, attempt: int, retry_after: float | None = None) -> float:
        """Wait before retry `attempt` (1-based): the server's Retry-After when it sent one,
        else exponential with full jitter (so a pool's retries do not arrive together)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), MAX_RETRY_AFTER_S)
        ceiling = min(self.base_wait_s * 2 ** (attempt - 1), self.max_wait_s)
        return random.uniform(ceiling / 2, ceiling)


class RateLimiter:
    """Evenly spaced request starts, at most `rate` a second (no burst). Needs no lock: the
    stage runs on one event loop and there is no await between reading and moving `_next`."""

    def __init__(self, rate: float) -> None:
        self.interval = 1.0 / rate
        self._next = 0.0

    async def wait(self) -> None:
        now = time.monotonic()
        start = max(now, self._next)
        self._next = start + self.interval
        if start > now:
            await asyncio.sleep(start - now)


# One limiter per endpoint and process: the stage opens a session per batch and may run
# several batches at once, and all of them share this worker's share of the rate.
_LIMITERS: dict[tuple[str, float], RateLimiter] = {}


def _limiter(url: str, rate: float | None) -> RateLimiter | None:
    if rate is None:
        return None
    key = (url, rate)
    if key not in _LIMITERS:
        _LIMITERS[key] = RateLimiter(rate)
    return _LIMITERS[key]


@dataclass(frozen=True)
class Reply:
    """What the stage reads of a response. A request that failed for good becomes a 200 with
    an OpenAI-style error body, which `_FromChatResponse` turns into a counted error row."""

    status: int
    reason: str
    body: Any

    async def json(self) -> Any:
        return self.body

    async def __aenter__(self) -> Reply:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None


def _retry_after(headers: Any) -> float | None:
    value = headers.get("Retry-After") if headers is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:  # an HTTP date: not worth parsing, the backoff is a fine stand-in
        return None


def _failed(message: str) -> Reply:
    return Reply(200, "OK", {"error": {"message": message[:400]}})


class RetryingSession:
    """An `aiohttp.ClientSession` stand-in for the HTTP stage's `session_factory`."""

    def __init__(self, policy: HttpPolicy) -> None:
        self.policy = policy
        self._session: Any = None

    async def __aenter__(self) -> RetryingSession:
        import aiohttp

        timeout = aiohttp.ClientTimeout(total=self.policy.timeout_s)
        self._session = aiohttp.ClientSession(timeout=timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._session.close()

    async def post(self, url: str, headers: dict[str, str], data: Any) -> Reply:
        """The stage calls this and awaits the coroutine later: the request starts then."""
        import aiohttp

        limiter = _limiter(url, self.policy.requests_per_second)
        last = ""
        for attempt in range(self.policy.max_retries + 1):
            if limiter is not None:
                await limiter.wait()
            retry_after = None
            try:
                async with self._session.post(url, headers=headers, data=data) as response:
                    if response.status not in RETRYABLE_STATUSES:
                        return Reply(response.status, response.reason or "", await _body(response))
                    last = f"HTTP {response.status} {response.reason or ''}".strip()
                    retry_after = _retry_after(response.headers)
            except (TimeoutError, aiohttp.ClientError) as exc:
                last = f"{type(exc).__name__}: {exc}"
            if attempt < self.policy.max_retries:
                await asyncio.sleep(self.policy.backoff_s(attempt + 1, retry_after))
        return _failed(f"{self.policy.max_retries} retries exhausted; last: {last}")


async def _body(response: Any) -> Any:
    """The JSON body; a non-JSON one (a proxy's HTML error page) becomes an error body."""
    try:
        body = await response.json(content_type=None)
    except ValueError:
        text = (await response.text())[:200]
        return {"error": {"message": f"HTTP {response.status}: not JSON: {text!r}"}}
    if not isinstance(body, dict) or not body:  # the stage needs a non-empty object
        return {"error": {"message": f"HTTP {response.status}: empty or not an object"}}
    return body


class SessionFactory:
    """Picklable `session_factory`: the stage's actors build one session per batch."""

    def __init__(self, policy: HttpPolicy) -> None:
        self.policy = policy

    def __call__(self) -> RetryingSession:
        return RetryingSession(self.policy)
