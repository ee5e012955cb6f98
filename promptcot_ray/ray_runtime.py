"""Connect to Ray: a local in-process cluster by default, or an existing one by address.

A local Ray started here keeps its workers' output (engines, DeepSpeed, Ray Train) off the
console unless the CLI asked for it (--verbose), and its session logs are copied into the run
directory's `logs/` when it shuts down, so a quiet console loses nothing.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, TextIO

from promptcot_ray import layout
from promptcot_ray.config import RayConfig

if TYPE_CHECKING:
    from promptcot_ray.storage import RunDir

logger = logging.getLogger(__name__)

# Whether a local Ray started here forwards its workers' stdout/stderr to this console. The
# CLI turns it off unless --verbose; a library caller keeps Ray's default.
_worker_output_to_console = True


def show_worker_output(show: bool) -> None:
    """Forward (or not) the workers' output of the next local Ray to this console."""
    global _worker_output_to_console
    _worker_output_to_console = show


# The raylet's notice that more Python workers started than 4x the machine's cores: Ray
# derives that limit from the core count (services.py, no setting), and 8 logical CPUs on a
# 2-core machine pass it in every stage, so it would reach the console on every run. It
# stays in the raylet's own log, which the run directory's logs/ keeps.
_RAYLET_NOTICES = ("PYTHON worker processes have been started",)


def quiet_raylet_notices() -> None:
    """Keep the raylet's worker-count notices off the driver's console (idempotent).

    Ray prints the raylet's errors from a driver thread with no filter or logger to hook.
    Every line it prints goes through `print_worker_logs`: the line as it came, the
    deduplicator's "[repeated Nx across cluster]" summary of earlier ones, and what the
    deduplicator still holds when Ray shuts down. Wrapping that one function is the only way
    to drop this message on all three paths and keep every other one (a dead actor, an OOM
    kill)."""
    from ray._private import worker as ray_worker

    original = getattr(ray_worker, "print_worker_logs", None)
    if original is None or getattr(original, "quiet_raylet_notices", False):
        return

    def filtered(data: dict, print_file: TextIO, ignore_prefix: bool = False) -> None:
        lines = data.get("lines") or []
        if data.get("pid") == "raylet" and any(n in x for x in lines for n in _RAYLET_NOTICES):
            logger.debug("raylet: %s", " ".join(lines)[:300])
            return
        original(data, print_file, ignore_prefix)

    filtered.quiet_raylet_notices = True  # type: ignore[attr-defined]
    ray_worker.print_worker_logs = filtered


def _job_address() -> str | None:
    """The cluster a submitted job runs in: Ray's job supervisor sets RAY_ADDRESS to the GCS
    address. An http:// value is a job-server address for clients (`submit`), not for drivers."""
    address = os.environ.get("RAY_ADDRESS")
    if address and not address.startswith(("http://", "https://")):
        return address
    return None


@contextlib.contextmanager
def connected(cfg: RayConfig, logs_to: RunDir | None = None) -> Iterator[None]:
    """Connect for the duration of a job; shut down only what this process started, and
    then copy a local Ray's session logs into `logs_to`'s `logs/` (the job's outcome stands
    whether or not the copy works)."""
    import ray

    if ray.is_initialized():  # e.g. inside a test session that owns the cluster
        yield
        return
    with _keep_sigterm_handler():
        session_dir = _init(cfg)
    try:
        yield
    finally:
        ray.shutdown()
        if session_dir is not None and logs_to is not None:
            _keep_session_logs(session_dir, logs_to)


def _keep_session_logs(session_dir: str, run_dir: RunDir) -> None:
    """Copy the session's logs folder (every worker's .out/.err, raylet, Ray Data's log)
    into logs/<session name>/: one folder per driver run, so a re-run keeps the last one's."""
    source = os.path.join(session_dir, "logs")
    if not os.path.isdir(source):
        return
    rel = f"{layout.LOGS}/{os.path.basename(session_dir.rstrip('/'))}"
    try:
        run_dir.upload_dir(source, rel)
    except OSError as exc:  # a log copy never fails a job; the logs stay where Ray put them
        logger.warning("could not copy Ray's logs to %s (%s); they stay in %s", rel, exc, source)
        return
    logger.info("engine, Ray and training logs: %s", run_dir.uri_of(rel))


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


def _init(cfg: RayConfig) -> str | None:
    """Start or join Ray; the session folder of a local Ray started here (None when joined)."""
    import ray

    env = dict(cfg.env_vars)
    address = cfg.address or _job_address()
    if address is None:
        num_cpus = cfg.num_cpus or max(4, (os.cpu_count() or 1) * 2)
        if not _worker_output_to_console:  # the CLI's quiet console (--verbose shows all)
            quiet_raylet_notices()
        context = ray.init(
            num_cpus=num_cpus,
            # the dashboard serves the State API that Ray Train's placement-group cleaner
            # polls (without it, every train stage logs a warning a second); loopback only
            include_dashboard=True,
            dashboard_host="127.0.0.1",
            runtime_env={"env_vars": env} if env else None,
            log_to_driver=_worker_output_to_console,
        )
        logger.info("started a local Ray with %d logical CPUs", num_cpus)
        return context.address_info.get("session_dir")
    # a cluster's workers log where its operators look (the dashboard, `ray job logs`)
    ray.init(address=address, runtime_env={"env_vars": env} if env else None)
    logger.info("connected to Ray at %s", address)
    return None
