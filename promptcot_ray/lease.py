"""One writer per run directory: a lease object with a heartbeat, on local disk or S3.

Two drivers writing one run directory (a RayJob retry while the old driver still runs,
ray-project/ray#64105) would interleave result files and markers. The driver that holds
`_LEASE.json` (host, pid, start time, a random token) renews it from a thread every
`ttl_s / 4` seconds; another driver is refused while the lease is live, and takes it over
once it has expired, or at once when the holder is a dead process on the same host.

S3 has no compare-and-swap that pyarrow exposes, so taking the lease is write, wait
`settle_s`, read back: of two drivers racing, the one whose token is read back wins and
the other is refused. Renewal re-reads first, so a driver that lost the lease notices
within one heartbeat and stops (`on_lost`) instead of writing on.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from promptcot_ray.errors import UserError
from promptcot_ray.storage import RunDir, StorageError

logger = logging.getLogger(__name__)

LEASE_FILE = "_LEASE.json"
DEFAULT_TTL_S = 60.0  # a dead holder on another host blocks a re-run this long at most


class RunDirBusy(UserError):
    """Another live driver holds the run directory; the message names it."""


def _process_started(pid: int) -> float | None:
    """Start time of a local process (epoch seconds), or None when it does not exist."""
    try:
        import psutil

        return psutil.Process(pid).create_time()
    except ImportError:  # no psutil: fall back to "does the pid exist"
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return 0.0
        return 0.0
    except Exception:  # psutil.NoSuchProcess / AccessDenied: treated as gone / unknown
        return None


def describe(holder: dict[str, Any]) -> str:
    """'pid 123 on host-a (started 21:40:02 UTC, lease expires in 41 s)'."""
    started = time.strftime("%H:%M:%S", time.gmtime(holder.get("started_at", 0)))
    left = float(holder.get("expires_at", 0)) - time.time()
    when = f"expires in {left:.0f} s" if left > 0 else f"expired {-left:.0f} s ago"
    return (
        f"pid {holder.get('pid')} on {holder.get('host')} (started {started} UTC, "
        f"command {holder.get('command', '?')!r}, lease {when})"
    )


class Lease:
    """The run directory's writer lease; use as a context manager around the job."""

    def __init__(
        self,
        run: RunDir,
        command: str = "",
        ttl_s: float = DEFAULT_TTL_S,
        settle_s: float = 0.5,
        on_lost: Callable[[str], None] | None = None,
    ) -> None:
        self.run, self.ttl_s, self.settle_s = run, ttl_s, settle_s
        self.on_lost = on_lost
        self.holder = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "pid_started": _process_started(os.getpid()),
            "started_at": time.time(),
            "token": uuid.uuid4().hex,
            "command": command,
        }
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.lost: str | None = None

    # -- reading -----------------------------------------------------------------------
    def current(self) -> dict[str, Any] | None:
        """The lease as stored, or None when there is none (or it is unreadable)."""
        if not self.run.exists(LEASE_FILE):
            return None
        try:
            data = json.loads(self.run.read_text(LEASE_FILE))
        except (json.JSONDecodeError, UnicodeDecodeError):  # torn or foreign: nobody holds it
            return None
        return data if isinstance(data, dict) else None

    def _holder_gone(self, other: dict[str, Any]) -> bool:
        """Expired, or a process of this host that no longer runs (SIGKILL, OOM, reboot)."""
        if time.time() > float(other.get("expires_at", 0)):
            return True
        if other.get("host") != self.holder["host"]:
            return False
        started = _process_started(int(other.get("pid", -1)))
        if started is None:
            return True
        recorded = other.get("pid_started")
        return bool(recorded and started and abs(started - float(recorded)) > 1.0)  # pid reused

    # -- writing -----------------------------------------------------------------------
    def _write(self) -> None:
        record = {**self.holder, "renewed_at": time.time(), "expires_at": time.time() + self.ttl_s}
        self.run.write_text(LEASE_FILE, json.dumps(record, sort_keys=True) + "\n")

    def acquire(self) -> None:
        """Take the lease or raise RunDirBusy naming the live holder; start the heartbeat."""
        try:
            self._take()
        except OSError as exc:  # pyarrow's S3 and local errors: the run dir is unusable
            raise StorageError(
                f"cannot take the writer lease {self.run.uri_of(LEASE_FILE)}: {exc}"
            ) from None
        self._thread = threading.Thread(target=self._heartbeat, name="run-lease", daemon=True)
        self._thread.start()
        logger.info("holding the writer lease of %s", self.run.uri)

    def _take(self) -> None:
        other = self.current()
        if other and other.get("token") != self.holder["token"]:
            if not self._holder_gone(other):
                raise self._busy(other)
            logger.warning("taking over the run directory lease of %s", describe(other))
        self._write()
        time.sleep(self.settle_s)  # a racing driver's write lands in this window
        now = self.current()
        if not now or now.get("token") != self.holder["token"]:
            raise self._busy(now or {})

    def _busy(self, other: dict[str, Any]) -> RunDirBusy:
        return RunDirBusy(
            f"run directory {self.run.uri} is in use by another driver: {describe(other)}. "
            f"Wait for it to finish or stop it; a driver that died releases the lease when it "
            f"expires ({self.ttl_s:.0f} s after its last heartbeat)"
        )

    def _heartbeat(self) -> None:
        period = self.ttl_s / 4
        last_ok = time.time()
        while not self._stop.wait(period):
            try:
                stored = self.current()
                if not stored or stored.get("token") != self.holder["token"]:
                    return self._lose(f"another driver took the lease: {describe(stored or {})}")
                self._write()
                last_ok = time.time()
            except OSError as exc:  # storage unreachable: retry until the lease would lapse
                logger.warning("cannot renew the run directory lease: %s", exc)
                if time.time() - last_ok > self.ttl_s:
                    return self._lose(f"could not renew the lease for {self.ttl_s:.0f} s: {exc}")

    def _lose(self, reason: str) -> None:
        self.lost = f"lost the writer lease of {self.run.uri}: {reason}"
        logger.error(self.lost)
        if self.on_lost is not None:
            self.on_lost(self.lost)

    def release(self) -> None:
        """Stop the heartbeat and delete the lease if it is still ours."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        try:
            stored = self.current()
            if stored and stored.get("token") == self.holder["token"]:
                self.run.delete_file(LEASE_FILE)
        except OSError as exc:  # storage unreachable: the lease lapses on its own (ttl_s)
            logger.warning(
                "could not release the writer lease (it expires in %.0f s): %s", self.ttl_s, exc
            )

    def __enter__(self) -> Lease:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
