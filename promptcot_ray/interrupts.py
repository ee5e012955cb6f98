"""SIGTERM and Ctrl-C stop a job within a bounded time and say how to resume.

KubeRay stops a job with SIGTERM, a user with Ctrl-C. Either becomes an `Interrupted`
exception in the main thread, so Ray Data stops its executor, the lease is released and
Ray shuts down; finished result files stay, and re-running the same command resumes. If
unwinding takes longer than `grace_s` (an engine that will not die), a watchdog ends the
process anyway; a second signal ends it at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Iterator

from promptcot_ray.errors import Interrupted

logger = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
DEFAULT_GRACE_S = 60.0
_reason: dict[str, str] = {}  # why request_stop() asked, for the handler's message


def resume_hint(run_uri: str) -> str:
    """The sentence every stop message ends with."""
    return f"finished work is kept in {run_uri}; re-run the same command to resume where it stopped"


def request_stop(reason: str) -> None:
    """Stop the job from any thread (e.g. the lease heartbeat): SIGTERM to this process,
    whose handler raises in the main thread with `reason` as the message."""
    _reason["text"] = reason
    os.kill(os.getpid(), signal.SIGTERM)


def _watchdog(signum: int, grace_s: float, message: str) -> None:
    """End the process if unwinding hangs; the message is still printed."""
    threading.Event().wait(grace_s)
    sys.stderr.write(f"error: {message} (forced exit after {grace_s:.0f} s)\n")
    sys.stderr.flush()
    os._exit(128 + signum)


@contextlib.contextmanager
def stop_on_signals(run_uri: str, grace_s: float = DEFAULT_GRACE_S) -> Iterator[None]:
    """While open, SIGTERM/SIGINT raise Interrupted in the main thread (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return
    state = {"stopping": False}

    def handler(signum: int, frame: object) -> None:
        name = signal.Signals(signum).name
        cause = _reason.pop("text", f"stopped by {name}")
        message = f"{cause}; {resume_hint(run_uri)}"
        if state["stopping"]:  # second signal: the user does not want to wait
            sys.stderr.write(f"error: {message}\n")
            os._exit(128 + signum)
        state["stopping"] = True
        logger.warning("%s: stopping (at most %.0f s)", cause, grace_s)
        threading.Thread(
            target=_watchdog, args=(signum, grace_s, message), daemon=True, name="stop-watchdog"
        ).start()
        raise Interrupted(signum, message)

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)
