"""The quiet console drops the raylet's worker-count notice and nothing else: the filter
wraps the function Ray's driver thread prints the raylet's errors with."""

from __future__ import annotations

from ray._private import worker as ray_worker

from promptcot_ray.ray_runtime import quiet_raylet_notices

NOTICE = (
    "WARNING: 8 PYTHON worker processes have been started on node: e08b4a with address: "
    "192.0.2.2, which is 4x the maximum expected startup concurrency (2)."
)


def _raylet(line: str) -> None:
    data = {"lines": [line], "pid": "raylet", "is_err": False}
    ray_worker.print_to_stdstream(data, ignore_prefix=False)


def test_the_worker_count_notice_is_dropped_and_other_raylet_errors_still_print(
    monkeypatch, capsys
):
    monkeypatch.setattr(ray_worker, "print_to_stdstream", ray_worker.print_to_stdstream)
    quiet_raylet_notices()
    wrapped = ray_worker.print_to_stdstream
    quiet_raylet_notices()  # a second local Ray in one process: one wrapper, not two
    assert ray_worker.print_to_stdstream is wrapped
    _raylet(NOTICE)
    _raylet("A worker died or was killed while executing a task by an unexpected system error.")
    out = capsys.readouterr().out
    assert "PYTHON worker processes" not in out
    assert "A worker died or was killed" in out and "raylet" in out
