"""The quiet console drops the raylet's worker-count notice and nothing else, on each path
Ray prints the raylet's errors by: the line as it comes, the deduplicator's "[repeated Nx
across cluster]" summary of earlier ones, and what the deduplicator holds at shutdown."""

from __future__ import annotations

import sys

from ray._private import worker as ray_worker
from ray._private.ray_logging import LogDeduplicator

from promptcot_ray.ray_runtime import quiet_raylet_notices

NOTICE = (
    "WARNING: {n} PYTHON worker processes have been started on node: e08b4a with address: "
    "192.0.2.2, which is 4x the maximum expected startup concurrency (2)."
)
DIED = "A worker died or was killed while executing a task by an unexpected system error."


class _Clock:
    now = 0.0

    def __call__(self) -> float:
        return self.now


def _raylet(line: str) -> None:
    data = {"lines": [line], "pid": "raylet", "ip": "192.0.2.2", "is_err": False}
    ray_worker.print_to_stdstream(data, ignore_prefix=False)


def test_the_worker_count_notice_is_dropped_and_other_raylet_errors_still_print(
    monkeypatch, capsys
):
    clock = _Clock()
    dedup = LogDeduplicator(5, None, None, _timesource=clock)
    monkeypatch.setattr(ray_worker, "stdout_deduplicator", dedup)
    monkeypatch.setattr(ray_worker, "print_worker_logs", ray_worker.print_worker_logs)

    # notices a Ray started earlier in this process left in the deduplicator, before the
    # filter was installed (CI's unit run: an earlier test's cluster)
    for n in (8, 12, 16):
        _raylet(NOTICE.format(n=n))
        clock.now += 1
    capsys.readouterr()

    quiet_raylet_notices()
    wrapped = ray_worker.print_worker_logs
    quiet_raylet_notices()  # a second local Ray in one process: one wrapper, not two
    assert ray_worker.print_worker_logs is wrapped

    clock.now += 10  # past the window: the deduplicator emits its "repeated" summary now
    _raylet(DIED)
    _raylet(NOTICE.format(n=24))
    _raylet(NOTICE.format(n=28))
    _raylet(DIED)
    _raylet(DIED)
    for leftover in dedup.flush():  # as ray.shutdown() prints what the deduplicator holds
        ray_worker.print_worker_logs(leftover, sys.stdout, False)

    out = capsys.readouterr().out
    assert "PYTHON worker processes" not in out
    assert DIED in out and "repeated 2x across cluster" in out
