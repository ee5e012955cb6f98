"""The engine watchdog on a real Ray: an actor whose engine core dies while its task hangs
is exited and restarted and the task retried; an idle actor that lost one is left alone.

The stand-in engine core is a process titled like vLLM's (`VLLM::EngineCore`), started by
the actor the way vLLM starts its own; the hang is a task that never returns, which is what
a vLLM client that missed its engine's death does (engine_watchdog.py's docstring).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from promptcot_ray.llm.engine_watchdog import GRACE_ENV, POLL_S, setup_hook_env

GRACE_S = 2


def _engine_actor(state: Path):
    import ray

    @ray.remote(
        num_cpus=0,
        max_restarts=-1,  # what Ray Data gives its actor pools
        max_task_retries=-1,
        runtime_env={"env_vars": {**setup_hook_env(), GRACE_ENV: str(GRACE_S)}},
    )
    class EngineHost:
        def start_engine(self) -> int:
            import subprocess
            import sys

            title = "import setproctitle, time; setproctitle.setproctitle('VLLM::EngineCore'); "
            self.core = subprocess.Popen([sys.executable, "-c", title + "time.sleep(600)"])
            return self.core.pid

        def submit(self) -> tuple[str, int]:
            if (state / "first-actor").exists():
                return "retried", os.getpid()
            (state / "first-actor").write_text(str(os.getpid()))
            (state / "core").write_text(str(self.start_engine()))
            time.sleep(600)  # a batch waiting on an engine that will never answer
            return "finished", os.getpid()

        def pid(self) -> int:
            return os.getpid()

    return EngineHost


def _wait_for(path: Path, timeout: float = 60) -> str:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and path.read_text():
            return path.read_text()
        time.sleep(0.1)
    pytest.fail(f"{path} was not written")


def _wait_titled(pid: int, timeout: float = 30) -> None:
    import psutil

    deadline = time.time() + timeout
    while "VLLM::EngineCore" not in " ".join(psutil.Process(pid).cmdline()):
        assert time.time() < deadline, "the stand-in engine core never took its title"
        time.sleep(0.1)
    time.sleep(3 * POLL_S)  # the watchdog has seen it: it polls the actor's children


def test_an_actor_hung_on_a_dead_engine_is_restarted_and_its_task_retried(ray_cluster, tmp_path):
    import ray

    host = _engine_actor(tmp_path).remote()
    task = host.submit.remote()
    core = int(_wait_for(tmp_path / "core"))
    _wait_titled(core)
    first = int(_wait_for(tmp_path / "first-actor"))
    os.kill(core, signal.SIGKILL)

    outcome, pid = ray.get(task, timeout=GRACE_S + 60)
    assert outcome == "retried"
    assert pid != first  # a new actor process ran the retry
    ray.kill(host)


def test_an_idle_actor_whose_engine_exited_is_left_running(ray_cluster, tmp_path):
    import ray

    host = _engine_actor(tmp_path).remote()
    before = ray.get(host.pid.remote())
    core = ray.get(host.start_engine.remote())
    _wait_titled(core)
    os.kill(core, signal.SIGKILL)
    time.sleep(GRACE_S * 3)
    assert ray.get(host.pid.remote(), timeout=30) == before
    ray.kill(host)
