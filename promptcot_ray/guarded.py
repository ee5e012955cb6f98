"""How the CLI runs a job: check, take the lease, connect, check the cluster, run.

Every job command (and the pipeline) goes through `run_guarded`, so each gets the same
order: offline preflight (seconds) -> a write probe of the run directory -> its writer
lease -> Ray -> cluster resources -> the job, with SIGTERM/Ctrl-C turned into a clean stop
that says how to resume, and storage that fails mid-job (its retries spent) a one-line
error that says the same. Nothing but the lease is written into the run directory before
all checks pass.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

from promptcot_ray import preflight
from promptcot_ray.interrupts import request_stop, stop_on_signals
from promptcot_ray.lease import Lease
from promptcot_ray.storage import RunDir, StorageError, storage_failure


def run_guarded(
    cfg: Any, job: Callable[[Any], Any], on_held: Callable[[RunDir], None] | None = None
) -> Any:
    """Run `job(cfg)` after every check; Ray is connected only for the job's duration.
    `on_held` runs once the lease is held: checks that write into the run directory. The
    storage failing mid-job (retries spent) is a one-line StorageError saying how to resume."""
    pools = preflight.check_config(cfg)
    run_dir = RunDir(cfg.storage.run_dir, cfg.storage)
    # a wrong endpoint or bucket fails here in seconds (the probe does not retry); past it,
    # every request retries through outages (storage.s3_max_retries)
    run_dir.preflight()
    try:
        return _held(cfg, job, run_dir, pools, on_held)
    except Exception as exc:
        reason = storage_failure(exc)
        if reason is None:
            raise  # a bug: its traceback
        raise StorageError(
            f"the run directory {run_dir.uri} failed mid-job: {reason}. Everything committed "
            "is kept: re-run the same command to resume once the storage answers again "
            "(storage.s3_max_retries sets how long each S3 request retries)"
        ) from None


def _held(cfg: Any, job: Callable[[Any], Any], run_dir: RunDir, pools: Any, on_held: Any) -> Any:
    from promptcot_ray.ray_runtime import _job_address, connected

    # the lease before Ray: a second driver is refused in seconds, without starting a cluster.
    # The stop handler wraps both: a SIGTERM while Ray starts or shuts down is a clean stop
    # too (connected() keeps ray.init from replacing it)
    with (
        stop_on_signals(run_dir.uri),
        Lease(run_dir, _command(), on_lost=request_stop),
        connected(cfg.ray, logs_to=run_dir),
    ):
        local = cfg.ray.address is None and _job_address() is None  # our own local Ray
        preflight.check_cluster(pools, fixed=local, wait_s=cfg.ray.placement_wait_s)
        if on_held is not None:
            on_held(run_dir)
        return job(cfg)


def _command() -> str:
    """What the holder runs, for the message a refused second driver prints."""
    return " ".join(sys.argv[:3])[:120]
