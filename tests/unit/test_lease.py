"""One writer per run directory: the lease refuses a second live driver, names the holder,
and is taken over once the holder died (at once on the same host, else after expiry)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from promptcot_ray.lease import LEASE_FILE, Lease, RunDirBusy
from promptcot_ray.storage import RunDir

REPO = Path(__file__).resolve().parents[2]


def _lease(run: RunDir, **kw) -> Lease:
    return Lease(run, command="test", settle_s=0.05, **kw)


def test_second_driver_is_refused_with_the_holders_name(tmp_path):
    run = RunDir(str(tmp_path / "run"))
    with _lease(run):
        stored = json.loads(run.read_text(LEASE_FILE))
        assert stored["pid"] == os.getpid() and stored["expires_at"] > time.time()
        with pytest.raises(RunDirBusy) as refused:
            _lease(run).acquire()
        message = str(refused.value)
        assert f"pid {os.getpid()}" in message and stored["host"] in message
        assert str(tmp_path / "run") in message
    assert not run.exists(LEASE_FILE)  # released on exit
    with _lease(run):  # and free again
        pass


def test_heartbeat_renews_the_lease(tmp_path):
    run = RunDir(str(tmp_path / "run"))
    with _lease(run, ttl_s=0.4):
        first = json.loads(run.read_text(LEASE_FILE))["expires_at"]
        time.sleep(0.5)  # longer than the ttl: only renewal keeps it live
        later = json.loads(run.read_text(LEASE_FILE))["expires_at"]
        assert later > first and later > time.time()
        with pytest.raises(RunDirBusy):
            _lease(run, ttl_s=0.4).acquire()


def _write_foreign_lease(run: RunDir, expires_in: float, host: str = "other-host") -> None:
    record = {
        "host": host,
        "pid": 4242,
        "pid_started": 1.0,
        "started_at": time.time() - 100,
        "token": "someone-else",
        "command": "promptcot-ray synthesize",
        "expires_at": time.time() + expires_in,
    }
    run.write_text(LEASE_FILE, json.dumps(record))


def test_live_holder_on_another_host_blocks_until_its_lease_expires(tmp_path):
    run = RunDir(str(tmp_path / "run"))
    _write_foreign_lease(run, expires_in=30)
    with pytest.raises(RunDirBusy) as refused:
        _lease(run).acquire()
    assert "pid 4242 on other-host" in str(refused.value)
    assert "promptcot-ray synthesize" in str(refused.value)
    _write_foreign_lease(run, expires_in=-1)  # its driver stopped renewing: expired
    with _lease(run) as lease:
        assert json.loads(run.read_text(LEASE_FILE))["token"] == lease.holder["token"]


def test_dead_process_on_this_host_is_taken_over_before_expiry(tmp_path):
    """A SIGKILLed driver re-run on the same machine need not wait for the expiry."""
    import socket

    run = RunDir(str(tmp_path / "run"))
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _write_foreign_lease(run, expires_in=60, host=socket.gethostname())
    record = json.loads(run.read_text(LEASE_FILE))
    run.write_text(LEASE_FILE, json.dumps({**record, "pid": dead.pid}))
    with _lease(run):
        assert json.loads(run.read_text(LEASE_FILE))["pid"] == os.getpid()


def test_a_driver_whose_lease_was_taken_is_told_to_stop(tmp_path):
    run = RunDir(str(tmp_path / "run"))
    lost: list[str] = []
    lease = _lease(run, ttl_s=0.4, on_lost=lost.append)
    lease.acquire()
    _write_foreign_lease(run, expires_in=30)  # another driver took over (e.g. we stalled)
    deadline = time.time() + 5
    while not lost and time.time() < deadline:
        time.sleep(0.05)
    lease.release()
    assert lost and "pid 4242 on other-host" in lost[0]
    assert json.loads(run.read_text(LEASE_FILE))["token"] == "someone-else"  # not deleted


HOLDER = textwrap.dedent(
    """
    import sys, time
    from promptcot_ray.lease import Lease
    from promptcot_ray.storage import RunDir
    with Lease(RunDir(sys.argv[1]), command="holder", ttl_s=2, settle_s=0.05):
        print("held", flush=True)
        time.sleep(float(sys.argv[2]))
    """
)


def test_two_processes_one_writer(tmp_path):
    """A second process is refused while the first lives; it takes over once it is gone."""
    run_uri = str(tmp_path / "run")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, run_uri, "60"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        second = subprocess.run(
            [sys.executable, "-c", HOLDER, run_uri, "0"], capture_output=True, text=True
        )
        assert second.returncode != 0
        assert f"pid {holder.pid}" in second.stderr and "RunDirBusy" in second.stderr
    finally:
        holder.kill()  # SIGKILL: no release, the lease stays behind
        holder.wait()
    assert RunDir(run_uri).exists(LEASE_FILE)
    third = subprocess.run(
        [sys.executable, "-c", HOLDER, run_uri, "0"], capture_output=True, text=True
    )
    assert third.returncode == 0 and third.stdout.strip() == "held", third.stderr


def test_s3_lease_refuses_a_second_driver_and_expires(s3_env):
    """The same rules on S3 (moto server over HTTP), where there is no atomic rename."""
    from promptcot_ray.config import StorageConfig

    uri = f"s3://{s3_env['bucket']}/runs/leased"
    run = RunDir(uri, StorageConfig(run_dir=uri, s3_endpoint_url=s3_env["endpoint"]))
    with _lease(run, ttl_s=1.0):
        key = "runs/leased/" + LEASE_FILE
        body = s3_env["client"].get_object(Bucket=s3_env["bucket"], Key=key)["Body"].read()
        assert json.loads(body)["pid"] == os.getpid()
        with pytest.raises(RunDirBusy) as refused:
            _lease(run, ttl_s=1.0).acquire()
        assert uri in str(refused.value) and f"pid {os.getpid()}" in str(refused.value)
    assert not run.exists(LEASE_FILE)
    _write_foreign_lease(run, expires_in=0.5)
    with pytest.raises(RunDirBusy):
        _lease(run).acquire()
    time.sleep(0.6)
    with _lease(run) as lease:
        assert json.loads(run.read_text(LEASE_FILE))["token"] == lease.holder["token"]
