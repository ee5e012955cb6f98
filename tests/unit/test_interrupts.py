"""SIGTERM and Ctrl-C become a clean stop with a resume message, within a bounded time."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time

import pytest

STOPPABLE = textwrap.dedent(
    """
    import sys, threading, time
    from promptcot_ray.errors import Interrupted
    from promptcot_ray.interrupts import request_stop, stop_on_signals
    grace, mode = float(sys.argv[1]), sys.argv[2]
    try:
        with stop_on_signals("/runs/r1", grace_s=grace):
            print("ready", flush=True)
            if mode == "lease":
                threading.Timer(0.2, request_stop, ["lost the writer lease"]).start()
            try:
                time.sleep(60)
            finally:
                if mode == "hang":  # unwinding that never ends (an engine that will not die)
                    time.sleep(60)
    except Interrupted as exc:
        print(exc.reason, flush=True)
        sys.exit(exc.exit_code)
    """
)


def _start(grace: float, mode: str) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", STOPPABLE, str(grace), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(0.3)  # into the sleep (and its finally), not the lines before it
    return proc


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_signal_stops_with_a_resume_message(signum, code):
    proc = _start(30, "wait")
    started = time.time()
    proc.send_signal(signum)
    out, _ = proc.communicate(timeout=20)
    assert time.time() - started < 5
    assert proc.returncode == code
    assert f"stopped by {signal.Signals(signum).name}" in out
    assert "/runs/r1" in out and "re-run the same command" in out


def test_unwinding_that_hangs_is_cut_off_after_the_grace_period():
    proc = _start(1.5, "hang")
    started = time.time()
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=20)
    assert 1.0 < time.time() - started < 10
    assert proc.returncode == 143
    assert "forced exit after 2 s" in err and "re-run the same command" in err


def test_a_second_signal_ends_at_once():
    proc = _start(30, "hang")
    proc.send_signal(signal.SIGTERM)
    time.sleep(0.5)
    started = time.time()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=20)
    assert time.time() - started < 5 and proc.returncode == 130


def test_a_lost_lease_stops_the_job_with_its_reason():
    proc = _start(30, "lease")
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 143
    assert "lost the writer lease" in out and "re-run the same command" in out
