"""Ray's JobSubmissionClient behind the CLI: submit, follow, status, logs, stop.

Token authentication (Ray 2.60's default) needs nothing here: the client reads
RAY_AUTH_MODE and RAY_AUTH_TOKEN / RAY_AUTH_TOKEN_PATH from the environment, exactly like
`ray job submit`.
"""

from __future__ import annotations

import asyncio
import os
import shlex
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from promptcot_ray.submission.runtime_env import SubmissionError

ADDRESS_VARS = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


@dataclass(frozen=True)
class Submission:
    """What is sent: the command line the cluster runs and its runtime environment."""

    entrypoint: str
    runtime_env: dict[str, Any]
    metadata: dict[str, str]
    submission_id: str | None = None


def resolve_address(address: str | None) -> str:
    """--address, else RAY_API_SERVER_ADDRESS / RAY_ADDRESS (as `ray job` reads them)."""
    for candidate in (address, *(os.environ.get(var) for var in ADDRESS_VARS)):
        if candidate:
            if not candidate.startswith(("http://", "https://")):
                raise SubmissionError(
                    f"job submission goes to the dashboard's HTTP address (http://HEAD:8265), "
                    f"not {candidate!r}"
                )
            return candidate
    raise SubmissionError("no cluster address: pass --address http://HEAD:8265 or set RAY_ADDRESS")


def entrypoint_command(job: str, config: Path, overrides: list[str]) -> str:
    """`python jobs/<job>.py --config <path relative to the working dir> --set ...`."""
    args = ["python", f"jobs/{job}.py", "--config", config.as_posix()]
    for override in overrides:
        args += ["--set", override]
    return shlex.join(args)


def connect(address: str | None):
    """A JobSubmissionClient, with connection and authentication failures made readable."""
    from ray.job_submission import JobSubmissionClient

    url = resolve_address(address)
    try:
        return JobSubmissionClient(url)
    except Exception as exc:  # the SDK raises ConnectionError, RuntimeError, HTTP errors
        raise SubmissionError(f"cannot reach the Ray job server at {url}: {exc}") from exc


def submit(client, submission: Submission) -> str:
    return client.submit_job(
        entrypoint=submission.entrypoint,
        runtime_env=submission.runtime_env,
        metadata=submission.metadata,
        submission_id=submission.submission_id,
    )


def follow(client, job_id: str, write: Callable[[str], None]) -> str:
    """Stream the job's logs until it ends; returns its final status name."""

    async def tail() -> None:
        async for chunk in client.tail_job_logs(job_id):
            write(chunk)

    asyncio.run(tail())
    return job_status(client, job_id)


def job_status(client, job_id: str) -> str:
    try:
        return str(client.get_job_status(job_id).value)
    except RuntimeError as exc:
        raise SubmissionError(f"no job {job_id!r} on this cluster: {exc}") from exc


def job_details(client, job_id: str) -> dict[str, Any]:
    info = client.get_job_info(job_id)
    return {
        "job_id": job_id,
        "status": str(info.status.value),
        "entrypoint": info.entrypoint,
        "message": info.message,
        "start_time": info.start_time,
        "end_time": info.end_time,
        "metadata": info.metadata,
    }
