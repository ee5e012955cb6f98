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
    import contextlib, sys, threading, time
    from promptcot_ray.errors import Interrupted
    from promptcot_ray.interrupts import request_stop, stop_on_signals
    grace, mode = float(sys.argv[1]), sys.argv[2]
    ray_up = contextlib.nullcontext()
    if mode == "ray":  # a real local Ray started inside, as every job does (guarded.py)
        from promptcot_ray.config import RayConfig
        from promptcot_ray.ray_runtime import connected
        ray_up = connected(RayConfig(num_cpus=1))
    try:
        with stop_on_signals("/runs/r1", grace_s=grace), ray_up:
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


def _start(grace: float, mode: str, ready_s: float = 20) -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-c", STOPPABLE, str(grace), mode],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + ready_s
    line = proc.stdout.readline().strip()
    while line != "ready" and line and time.time() < deadline:  # Ray's start-up lines
        line = proc.stdout.readline().strip()
    assert line == "ready", proc.stderr.read()[-2000:] if proc.poll() is not None else line
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


def test_sigterm_while_ray_runs_is_still_a_clean_stop():
    """ray.init installs its own SIGTERM handler (`sys.exit(15)`: no message, exit 15);
    connected() keeps the job's handler in charge, while Ray runs and while it shuts down."""
    proc = _start(30, "ray", ready_s=120)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err[-2000:]
    assert "stopped by SIGTERM" in out and "re-run the same command" in out
