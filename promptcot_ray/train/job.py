"""The train job: SFT rows -> Ray Train TorchTrainer with DeepSpeed -> models/<name>/.

Run the same command again after a kill and Ray Train hands the loop the latest
checkpoint under models/<name>/checkpoints: the step count continues and the optimizer
state is restored. A finished model (its export marked complete with the same config) is
not trained again.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import ray

from promptcot_ray import layout
from promptcot_ray.config import ConfigError, config_hash, config_to_yaml
from promptcot_ray.ledger import StageRecord, append_records
from promptcot_ray.model_paths import export_dir, resolve_model
from promptcot_ray.records import make_id
from promptcot_ray.sources import read_rows
from promptcot_ray.storage import RunDir
from promptcot_ray.train.config import TrainConfig
from promptcot_ray.train.dataset import tokenized
from promptcot_ray.train.deepspeed_config import total_optimizer_steps
from promptcot_ray.train.examples import TRUNCATED
from promptcot_ray.train.loop import CURVE_FILE, curve_from_csv, train_loop

logger = logging.getLogger(__name__)

JOB = "train"
CHECKPOINTS = layout.CHECKPOINTS
BYTES_PER_TOKEN = 12  # int32 input id + label + position id


class TrainError(RuntimeError):
    """Training cannot start or did not finish; the message says why."""


EXPECTED_ERRORS = (TrainError,)


def _load_rows(cfg: TrainConfig, run: RunDir):
    table = read_rows(cfg.data.source, cfg.storage, run, "data.source")
    missing = [
        c
        for c in (cfg.data.prompt_column, cfg.data.completion_column)
        if c not in table.schema.names
    ]
    if missing:
        raise ConfigError(
            f"data.source {cfg.data.source!r} has no column(s) {missing}; it has "
            f"{table.schema.names} (set data.prompt_column / data.completion_column)"
        )
    if "status" in table.schema.names:  # a job's output folder: train on its ok rows only
        table = table.filter(pc.fill_null(pc.equal(table["status"], "ok"), False))
    if cfg.data.max_rows:
        table = table.slice(0, cfg.data.max_rows)
    columns = [cfg.data.prompt_column, cfg.data.completion_column]
    # generator rows (rationales/) say whether their prompt is raw text: keep that column
    columns += ["prompt_format"] if "prompt_format" in table.schema.names else []
    return table.select(columns)


RESUME_SAFE_FIELDS = {"ray", "env_vars", "max_failures", "keep_checkpoints", "export"}


def _check_checkpoints_match(cfg: TrainConfig, run: RunDir) -> None:
    """Ray Train resumes from models/<name>/checkpoints by itself; refuse to continue a run
    whose data, model or optimisation settings have changed since."""
    rel = layout.model_file(cfg.name, "_TRAINING.json")
    settings = cfg.model_dump(mode="json", exclude=RESUME_SAFE_FIELDS)
    key = make_id("train-settings", settings)
    checkpoints = run.exists(layout.model_file(cfg.name, CHECKPOINTS))
    if checkpoints and run.exists(rel) and run.read_json(rel).get("settings_hash") != key:
        raise TrainError(
            f"{run.uri_of(layout.model_file(cfg.name, CHECKPOINTS))} holds checkpoints of a run "
            f"with other settings; use another name (--set name=...) or delete "
            f"models/{cfg.name}/ to start over"
        )
    run.write_json(rel, {"settings_hash": key, "settings": settings})


def _infra_failure(exc: BaseException) -> bool:
    """Whether a failed fit() was the cluster's doing (a lost node or actor, preemption,
    memory, storage or the collective backend), which a re-run resumes past, and not a bug."""
    import ray.train

    if isinstance(exc, ray.train.PreemptionError):
        return True
    if isinstance(exc, ray.train.WorkerGroupError):
        causes = list(exc.worker_failures.values())
    elif isinstance(exc, ray.train.ControllerError):
        causes = [exc.controller_failure]
    else:
        return False
    return bool(causes) and all(_infra_cause(c) for c in causes)


def _infra_cause(exc: BaseException | None) -> bool:
    import ray.exceptions
    import torch

    if isinstance(exc, ray.exceptions.RayTaskError):  # a task's own exception, wrapped
        return _infra_cause(exc.cause)
    infra = (
        ray.exceptions.RayError,  # actor or node died, object lost, out of memory
        OSError,  # storage: checkpoints and exports
        MemoryError,
        torch.cuda.OutOfMemoryError,
        torch.distributed.DistError,  # NCCL / gloo
    )
    return isinstance(exc, infra)


def _count_outcomes(outcomes) -> tuple[dict[str, int], int, int, int]:
    """(rejections by reason, truncated rows, trained tokens, training sequences)."""
    reasons = outcomes["reason"].drop_null().to_pylist()
    rejected: dict[str, int] = {}
    for reason in reasons:
        rejected[reason] = rejected.get(reason, 0) + 1
    truncated = int(pc.sum(outcomes[TRUNCATED].cast("int64")).as_py() or 0)
    tokens = int(pc.sum(outcomes["tokens"]).as_py() or 0)
    sequences = int(pc.sum(outcomes["sequences"]).as_py() or 0)
    return rejected, truncated, tokens, sequences


def _trainer(cfg: TrainConfig, run: RunDir, dataset: Any, loop_config: dict[str, Any]) -> Any:
    from ray.train import CheckpointConfig, DataConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    return TorchTrainer(
        train_loop,
        train_loop_config=loop_config,
        scaling_config=ScalingConfig(
            num_workers=cfg.num_workers,
            use_gpu=cfg.use_gpu,
            resources_per_worker={"CPU": cfg.cpus_per_worker},
        ),
        torch_config=TorchConfig(backend="nccl" if cfg.use_gpu else "gloo"),
        run_config=RunConfig(
            name=CHECKPOINTS,
            storage_path=run.path(layout.model_dir(cfg.name)),
            storage_filesystem=run.fs,
            checkpoint_config=CheckpointConfig(num_to_keep=cfg.keep_checkpoints),
            failure_config=FailureConfig(max_failures=cfg.max_failures),
            worker_runtime_env={"env_vars": cfg.env_vars} if cfg.env_vars else None,
        ),
        datasets={"train": dataset},
        dataset_config=(
            DataConfig(datasets_to_split=[], execution_options=_ordered_options())
            if loop_config["rows_per_worker"] is not None
            else DataConfig()
        ),
    )


def _ordered_options():
    from ray.data import ExecutionOptions

    options = ExecutionOptions()
    options.preserve_order = True
    return options


@contextlib.contextmanager
def _ordered():
    """Ray Data keeps block order while this is open (the driver's context is shared)."""
    from ray.data import DataContext

    options = DataContext.get_current().execution_options
    before = options.preserve_order
    options.preserve_order = True
    try:
        yield
    finally:
        options.preserve_order = before


def run(cfg: TrainConfig) -> dict[str, Any]:
    run_dir = RunDir(cfg.storage.run_dir, cfg.storage)
    run_dir.preflight()
    target, chash = export_dir(cfg.name), config_hash(cfg)
    if run_dir.is_complete(target):
        marker = run_dir.read_json(f"{target}/_SUCCESS.json")
        if marker.get("config_hash") == chash:
            logger.info("%s is already trained with this config; nothing to do", target)
            return {**marker, "name": cfg.name, "export": run_dir.uri_of(target), "skipped": True}
        raise TrainError(
            f"{run_dir.uri_of(target)} was trained with a different config; use another "
            f"name (--set name=...) or delete models/{cfg.name}/"
        )
    _check_checkpoints_match(cfg, run_dir)
    run_dir.write_text(layout.model_file(cfg.name, layout.CONFIG_FILE), config_to_yaml(cfg))
    if cfg.rehearse:  # the tiny model stands in for base_model (train/rehearsal.py)
        from promptcot_ray.train.rehearsal import tiny_model_uri

        model_uri = tiny_model_uri(run_dir)
    else:
        model_uri = resolve_model(cfg.base_model, run_dir)
    started = time.perf_counter()

    rows = _load_rows(cfg, run_dir)
    # shuffled once on the driver, seeded, before tokenising: both tokenising passes see the
    # same batches (packing counts agree) and large sets stream without an all-to-all shuffle
    order = np.random.default_rng(cfg.seed).permutation(rows.num_rows)
    rows = rows.take(pa.array(order))
    outcomes = pa.concat_tables(
        ray.get(tokenized(rows, model_uri, cfg, outcomes_only=True).to_arrow_refs())
    )
    rejected, truncated, tokens, sequences = _count_outcomes(outcomes)
    rows_per_worker = sequences // cfg.num_workers
    if rows_per_worker < cfg.micro_batch_size:
        raise TrainError(
            f"only {sequences} usable training sequences from {rows.num_rows} rows "
            f"(rejected: {rejected or 'none'}); need at least num_workers x micro_batch_size = "
            f"{cfg.num_workers * cfg.micro_batch_size}"
        )
    total_steps = total_optimizer_steps(cfg, rows_per_worker)
    if cfg.rehearse:  # every row is read and tokenised; only the steps are capped
        total_steps = min(total_steps, cfg.rehearsal_max_steps)
    logger.info(
        "training %s on %d sequences (%d rows, %d truncated, rejected %s): %d optimizer steps",
        cfg.name,
        sequences,
        rows.num_rows,
        truncated,
        rejected or "none",
        total_steps,
    )
    materialized = tokens * BYTES_PER_TOKEN <= cfg.materialize_max_bytes
    if materialized:
        # small enough for the object store: tokenise once, in row order, and hand every
        # worker the whole set to take its own slice of (same rows on every run and resume)
        with _ordered():
            dataset = tokenized(rows, model_uri, cfg, outcomes_only=False).materialize()
    else:  # Ray Train splits the stream evenly (dynamically) across the workers each epoch
        dataset = tokenized(rows, model_uri, cfg, outcomes_only=False)
    loop_config = {
        "train": cfg.model_dump(mode="json"),
        "model_dir": model_uri,
        "total_steps": total_steps,
        "config_hash": chash,
        "rows_per_worker": rows_per_worker if materialized else None,
    }
    try:  # Ray Train v2 raises from fit() once FailureConfig's restarts are used up
        result = _trainer(cfg, run_dir, dataset, loop_config).fit()
    except ray.train.TrainingFailedError as exc:
        if not _infra_failure(exc):
            raise  # a bug in the loop: its traceback, not advice to re-run
        raise TrainError(
            f"training failed: {type(exc).__name__}: {str(exc)[:2000]}; re-run the same "
            "command to resume from the latest checkpoint"
        ) from exc
    if result.error is not None:
        raise TrainError(f"training failed: {type(result.error).__name__}: {result.error}")
    # the latest checkpoint's report (Result.metrics) says where a resumed run began
    resumed_from = (result.metrics or {}).get("resumed_from_step")
    if resumed_from is not None:  # the workers' own line is in the session's logs only
        logger.info("%s resumed from checkpoint at step %d", cfg.name, resumed_from)
    curve = curve_from_csv(run_dir.read_text(layout.model_file(cfg.name, CURVE_FILE)))
    seconds = time.perf_counter() - started
    summary = {
        "name": cfg.name,
        "rows": rows.num_rows,
        "sequences": sequences,
        "truncated": truncated,
        "rejected": rejected,
        "steps": curve[-1]["step"] if curve else 0,
        "first_loss": curve[0]["loss"] if curve else None,
        "final_loss": curve[-1]["loss"] if curve else None,
        "tokens_per_s": _mean([r["tokens_per_s"] for r in curve]),
        "seconds": round(seconds, 1),
        "resumed_from_step": resumed_from,
        "export": run_dir.uri_of(target) if cfg.export else None,
        "checkpoints": run_dir.uri_of(layout.model_file(cfg.name, CHECKPOINTS)),
    }
    append_records(
        run_dir,
        [
            StageRecord(
                job=JOB,
                stage=f"train:{cfg.name}",
                rows_in=rows.num_rows,
                rows_out=rows.num_rows - sum(rejected.values()),
                rejected=rejected,
                tokens_in=tokens,
                seconds=seconds,
                model="rehearsal:tiny-model" if cfg.rehearse else cfg.base_model,
                extra={k: summary[k] for k in ("steps", "final_loss", "tokens_per_s", "truncated")},
            )
        ],
    )
    return summary


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 1) if values else None
