"""Connect to Ray: a local in-process cluster by default, or an existing one by address."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator

from promptcot_ray.config import RayConfig

logger = logging.getLogger(__name__)


def _job_address() -> str | None:
    """The cluster a submitted job runs in: Ray's job supervisor sets RAY_ADDRESS to the GCS
    address. An http:// value is a job-server address for clients (`submit`), not for drivers."""
    address = os.environ.get("RAY_ADDRESS")
    if address and not address.startswith(("http://", "https://")):
        return address
    return None


@contextlib.contextmanager
def connected(cfg: RayConfig) -> Iterator[None]:
    """Connect for the duration of a job; shut down only what this process started."""
    import ray

    if ray.is_initialized():  # e.g. inside a test session that owns the cluster
        yield
        return
    with _keep_sigterm_handler():
        _init(cfg)
    try:
        yield
    finally:
        ray.shutdown()


@contextlib.contextmanager
def _keep_sigterm_handler() -> Iterator[None]:
    """ray.init installs a SIGTERM handler of its own (`sys.exit(signum)`: exit 15, no
    message, no lease released); the job's own stop handler (interrupts.py) stays in charge,
    from before Ray starts until after it has shut down."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    try:
        yield
    finally:
        if main and previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _init(cfg: RayConfig) -> None:
    import ray

    env = dict(cfg.env_vars)
    address = cfg.address or _job_address()
    if address is None:
        num_cpus = cfg.num_cpus or max(4, (os.cpu_count() or 1) * 2)
        ray.init(
            num_cpus=num_cpus,
            # the dashboard serves the State API that Ray Train's placement-group cleaner
            # polls (without it, every train stage logs a warning a second); loopback only
            include_dashboard=True,
            dashboard_host="127.0.0.1",
            runtime_env={"env_vars": env} if env else None,
            log_to_driver=True,
        )
        logger.info("started a local Ray with %d logical CPUs", num_cpus)
    else:
        ray.init(address=address, runtime_env={"env_vars": env} if env else None)
        logger.info("connected to Ray at %s", address)
