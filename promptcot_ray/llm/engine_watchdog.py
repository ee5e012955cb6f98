"""Exit an engine actor whose vLLM engine core died while the actor was running a batch.

ray.data.llm already exits an engine actor (`os._exit(1)`, so Ray restarts it and retries
the batch) when a request raises vLLM's EngineDeadError. That error does not always come:
when the engine core dies while requests are in flight, vLLM's monitor thread shuts the
client down from outside the event loop, and the requests waiting on the output task can
wait forever (seen here: an engine core SIGKILLed at the first batch of a synthesize round
left the actor in `submit` with no progress for 14 minutes). No vLLM or Ray setting bounds
that wait, so this watchdog does what ray.data.llm does on the error, when the error never
arrives: an actor that is running a task while an engine core it started is gone exits
after a grace period, the same exit ray.data.llm uses, and Ray restarts it and retries the
batch (Ray Data's actor pools restart without limit).

It runs as the engine actors' worker-process setup hook (`setup_hook_env`), so only the
processes that host engines have it; other Ray workers never see it.
"""

from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Callable

import psutil

logger = logging.getLogger(__name__)

ENGINE_CORE_TITLE = "VLLM::EngineCore"
GRACE_ENV = "PROMPTCOT_ENGINE_WATCHDOG_GRACE_S"
DEFAULT_GRACE_S = 30.0  # ray.data.llm's own exit on EngineDeadError comes within seconds
POLL_S = 1.0
HOOK = f"{__name__}.start"
# Ray titles an actor's process `ray::<Actor>` when idle and `ray::<Actor>.<method>` while
# it runs one (Ray Data's: `ray::MapWorker(MapBatches(vLLMEngineStageUDF)).submit`)
_RUNNING_A_TASK = re.compile(r"^ray::\S+\.[A-Za-z_]\w*$")


def setup_hook_env() -> dict[str, str]:
    """Env vars that make a Ray worker run `start` when it boots.

    Ray turns a job-level `worker_process_setup_hook` into this variable; an actor's own
    runtime_env is not converted, so the engine actors get the variable itself (its name is
    Ray's constant, read here so a Ray upgrade that renames it breaks loudly, not silently).
    """
    from ray._private import ray_constants

    return {ray_constants.WORKER_PROCESS_SETUP_HOOK_ENV_VAR: HOOK}


def start() -> None:
    """Ray's setup hook: watch this process's engine cores on a daemon thread."""
    grace = float(os.environ.get(GRACE_ENV, DEFAULT_GRACE_S))
    threading.Thread(
        target=watch,
        args=(psutil.Process(),),
        kwargs={"grace_s": grace},
        daemon=True,
        name="engine-watchdog",
    ).start()


def watch(
    me: psutil.Process,
    grace_s: float = DEFAULT_GRACE_S,
    poll_s: float = POLL_S,
    exit_process: Callable[[int], object] = os._exit,
) -> None:
    """Poll forever; exit the process once an engine core it started has been gone for
    `grace_s` seconds while it runs a task."""
    seen: dict[int, psutil.Process] = {}
    lost_since: float | None = None
    while True:
        for core in _engine_cores(me):
            seen.setdefault(core.pid, core)
        lost = [pid for pid, core in seen.items() if not _alive(core)]
        if lost and _running_a_task(me):
            lost_since = lost_since or time.monotonic()
            if time.monotonic() - lost_since >= grace_s:
                logger.error(
                    "engine core %s is gone and this actor's task has not ended for %.0f s: "
                    "exiting so Ray restarts the actor and retries the batch",
                    lost,
                    grace_s,
                )
                exit_process(1)
                return
        else:
            lost_since = None
        time.sleep(poll_s)


def _engine_cores(me: psutil.Process) -> list[psutil.Process]:
    cores = []
    for child in me.children(recursive=True):
        try:
            if ENGINE_CORE_TITLE in " ".join(child.cmdline()):
                cores.append(child)
        except psutil.Error:  # exited between listing and reading
            continue
    return cores


def _alive(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def _running_a_task(me: psutil.Process) -> bool:
    try:
        title = " ".join(me.cmdline()).split()  # setproctitle pads the title with spaces
        return bool(title and _RUNNING_A_TASK.match(title[0]))
    except psutil.Error:
        return False
