"""Rehearsal mode for whole jobs: `--rehearse` rewrites a config, and a run directory keeps
rehearsal output apart from real output.

`rehearsed(cfg)` turns every LLM use in a job config into the rehearsal engine (model
`rehearsal`, llm/rehearsal.py) and a train config into a capped run on the tiny model, so
a shipped 400k config runs end to end on a CPU Ray cluster before GPUs are booked. A run
directory that ever held rehearsal rows says so in RUN_MODE.json, and real jobs refuse it
(and rehearsals refuse a run directory with real rows): the two must never meet in a round.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from promptcot_ray.config import ConfigError, LLMConfig
from promptcot_ray.llm.rehearsal_config import REHEARSAL_MODEL
from promptcot_ray.storage import RunDir

MODE_FILE = "RUN_MODE.json"
# folders any job that runs a model writes: their presence means the run already has rows
OUTPUT_DIRS = ("concepts", "rationales", "synthesis", "distill", "models", "eval", "ledger.jsonl")


class RunModeError(ConfigError):
    """Rehearsal and real rows would meet in one run directory."""


def _rehearse(value: Any) -> Any:
    """`value` with every LLMConfig and TrainConfig inside it switched to rehearsal."""
    from promptcot_ray.train.config import TrainConfig

    if isinstance(value, LLMConfig):
        return value.model_copy(update={"engine": "rehearsal", "model": REHEARSAL_MODEL})
    if isinstance(value, TrainConfig):
        return rehearsal_training(value)
    if isinstance(value, BaseModel):
        updates = {k: _rehearse(getattr(value, k)) for k in type(value).model_fields}
        return value.model_copy(update=updates)
    if isinstance(value, list | tuple):
        return type(value)(_rehearse(v) for v in value)
    return value


def rehearsed(cfg: BaseModel) -> BaseModel:
    """The job config for a rehearsal of it (validated again, so every rule still holds)."""
    return type(cfg).model_validate(_rehearse(cfg).model_dump(mode="json"))


def rehearsal_training(cfg: Any) -> Any:
    """A train config that runs the tiny model on CPUs for a capped number of steps.

    The data path (reading, tokenising, splitting every row) runs at full size; only the
    optimizer steps are capped (TrainConfig.rehearsal_max_steps).
    """
    deepspeed = cfg.deepspeed.model_copy(update={"offload_optimizer": False})
    return cfg.model_copy(
        update={
            "rehearse": True,
            "use_gpu": False,
            "precision": "fp32",
            "num_workers": min(cfg.num_workers, 2),
            "cpus_per_worker": 1.0,
            "attn_implementation": None,
            "deepspeed": deepspeed,
        }
    )


def _walk(value: Any) -> list[Any]:
    if isinstance(value, BaseModel):
        found = [value]
        for name in type(value).model_fields:
            found += _walk(getattr(value, name))
        return found
    if isinstance(value, list | tuple):
        return [x for v in value for x in _walk(v)]
    return []


def run_mode(cfg: BaseModel) -> str | None:
    """'rehearsal', 'real', or None for a job that runs no model (quality, report)."""
    from promptcot_ray.train.config import TrainConfig

    models = [m for m in _walk(cfg) if isinstance(m, LLMConfig | TrainConfig)]
    if getattr(cfg, "rehearse", False) is True:
        return "rehearsal"
    if not models:
        return None
    rehearsing = any(
        (isinstance(m, LLMConfig) and m.engine == "rehearsal")
        or (isinstance(m, TrainConfig) and m.rehearse)
        for m in models
    )
    return "rehearsal" if rehearsing else "real"


def check_run_mode(run: RunDir, mode: str | None) -> None:
    """Record the run's mode on first use; refuse a job of the other mode (fail closed)."""
    if mode is None:
        return
    if run.exists(MODE_FILE):
        recorded = run.read_json(MODE_FILE).get("mode")
        if recorded != mode:
            raise RunModeError(_mixing(run, recorded, mode))
        return
    if mode == "rehearsal" and any(run.exists(d) for d in OUTPUT_DIRS):
        raise RunModeError(_mixing(run, "real", mode))
    run.write_json(MODE_FILE, {"mode": mode})


def _mixing(run: RunDir, recorded: str | None, mode: str) -> str:
    fix = "drop --rehearse" if mode == "rehearsal" else "add --rehearse"
    return (
        f"{run.uri} holds {recorded} output and this is a {mode} job: rehearsal and real rows "
        f"must not share a run directory; use another run_dir (--set storage.run_dir=...) "
        f"or {fix}"
    )
