"""The per-worker training loop: DeepSpeed engine, Ray Data shard, checkpoints, export.

Runs inside Ray Train workers (one per GPU, or per CPU slot with gloo). Everything it
needs arrives in one plain dict, so the loop has no driver-side state.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from typing import Any

from promptcot_ray import layout
from promptcot_ray.train.config import TrainConfig
from promptcot_ray.train.deepspeed_config import deepspeed_config, lr_multiplier
from promptcot_ray.train.examples import collate

logger = logging.getLogger(__name__)

CHECKPOINT_TAG = "ds"  # one DeepSpeed tag per Ray checkpoint folder
STATE_KEY = "promptcot_state"  # our resume position inside DeepSpeed's client_state
CURVE_FILE = layout.CURVE_FILE
CURVE_COLUMNS = ("step", "epoch", "loss", "lr", "tokens", "step_seconds", "tokens_per_s")


def _load_model(cfg: TrainConfig, model_dir: str, ds_config: dict[str, Any]) -> tuple:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    keep_alive = None
    if cfg.deepspeed.zero_stage == 3:
        # Makes from_pretrained load each parameter straight into its ZeRO-3 partition,
        # so a 32B model never materialises whole on one worker. Must outlive the load.
        from transformers.integrations import HfDeepSpeedConfig

        keep_alive = HfDeepSpeedConfig(ds_config)
    dtype = torch.bfloat16 if cfg.precision == "bf16" else torch.float32
    kwargs: dict[str, Any] = {"dtype": dtype}
    if cfg.attn_implementation:
        kwargs["attn_implementation"] = cfg.attn_implementation
    model = AutoModelForCausalLM.from_pretrained(model_dir, **kwargs)
    model.config.use_cache = False
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    return model, tokenizer, keep_alive


def _param_groups(model: Any, weight_decay: float) -> list[dict[str, Any]]:
    """No weight decay on biases and norm weights (1-D tensors), as is standard."""
    decay, no_decay = [], []
    for _, p in model.named_parameters():
        if p.requires_grad:  # ZeRO-3 partitions leave p empty: its true shape is ds_shape
            ndim = len(getattr(p, "ds_shape", p.shape))
            (no_decay if ndim < 2 else decay).append(p)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def _initialize(cfg: TrainConfig, model: Any, total_steps: int, ds_config: dict[str, Any]):
    import deepspeed
    import torch

    optimizer = None
    if not cfg.deepspeed.offload_optimizer:
        # torch's AdamW needs no compiled DeepSpeed op; ZeRO partitions its state all the same
        optimizer = torch.optim.AdamW(
            _param_groups(model, cfg.weight_decay), lr=cfg.learning_rate, betas=cfg.adam_betas
        )

    def schedule(opt: Any) -> Any:
        return torch.optim.lr_scheduler.LambdaLR(
            opt,
            lambda s: lr_multiplier(s, cfg.warmup_for(total_steps), total_steps, cfg.lr_schedule),
        )

    engine, _, _, scheduler = deepspeed.initialize(
        model=model,
        model_parameters=None if optimizer else _param_groups(model, cfg.weight_decay),
        optimizer=optimizer,
        lr_scheduler=schedule,
        config=ds_config,
    )
    return engine, scheduler


def _restore(engine: Any) -> dict[str, Any]:
    """Load the latest Ray Train checkpoint into the engine; return where training stopped."""
    import ray.train

    checkpoint = ray.train.get_checkpoint()
    if checkpoint is None:
        return {"epoch": 0, "micro_in_epoch": 0, "tokens": 0, "curve": []}
    with checkpoint.as_directory() as folder:
        _, client_state = engine.load_checkpoint(
            folder, tag=CHECKPOINT_TAG, load_optimizer_states=True, load_lr_scheduler_states=True
        )
    state = {**(client_state or {})[STATE_KEY], "resumed_from_step": engine.global_steps}
    logger.info(
        "resumed from checkpoint at step %d (epoch %d)", engine.global_steps, state["epoch"]
    )
    return state


def _save(engine: Any, state: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Every rank writes its ZeRO shard; Ray Train merges the ranks' folders into one."""
    import ray.train
    from ray.train import Checkpoint

    with tempfile.TemporaryDirectory() as folder:
        engine.save_checkpoint(folder, tag=CHECKPOINT_TAG, client_state={STATE_KEY: state})
        ray.train.report(metrics, checkpoint=Checkpoint.from_directory(folder))


def _write_curve(cfg: TrainConfig, curve: list[dict[str, Any]]) -> None:
    from promptcot_ray.storage import RunDir

    lines = [",".join(CURVE_COLUMNS)]
    lines += [",".join(str(row[c]) for c in CURVE_COLUMNS) for row in curve]
    run = RunDir(cfg.storage.run_dir, cfg.storage)
    run.write_text(layout.model_file(cfg.name, CURVE_FILE), "\n".join(lines) + "\n")


def _export(cfg: TrainConfig, engine: Any, tokenizer: Any, info: dict[str, Any]) -> None:
    """Hugging Face safetensors + tokenizer (with its chat template) under models/<name>/final."""
    import ray.train

    from promptcot_ray.model_paths import export_dir
    from promptcot_ray.storage import RunDir

    if cfg.deepspeed.zero_stage == 3:
        state_dict = engine._zero3_consolidated_16bit_state_dict()  # collective: every rank
    else:
        state_dict = engine.module.state_dict()
    if ray.train.get_context().get_world_rank() != 0:
        return
    run = RunDir(cfg.storage.run_dir, cfg.storage)
    target = export_dir(cfg.name)
    model = engine.module
    model.config.use_cache = True
    with tempfile.TemporaryDirectory() as folder:
        model.save_pretrained(folder, state_dict=state_dict, safe_serialization=True)
        tokenizer.save_pretrained(folder)
        run.upload_dir(folder, target)
    run.mark_complete(target, info)


def _micro_batches(shard: Any, micro_batch_size: int, config: dict[str, Any], ctx: Any):
    """This rank's micro-batches of one epoch.

    A materialised set reaches every worker whole (`rows_per_worker` is set): each rank takes
    its slice of every world-size batch, so a worker sees the same rows in the same order on
    every run and after a resume. A streamed set is split dynamically by Ray Train instead
    (each worker the right number of rows, not necessarily the same ones).
    """
    rows_per_worker = config.get("rows_per_worker")
    if rows_per_worker is None:
        yield from shard.iter_batches(batch_size=micro_batch_size, batch_format="pyarrow")
        return
    world, rank = ctx.get_world_size(), ctx.get_world_rank()
    remaining = rows_per_worker * world  # equal shares: every rank makes the same steps
    for batch in shard.iter_batches(batch_size=micro_batch_size * world, batch_format="pyarrow"):
        batch = batch.slice(0, min(batch.num_rows, remaining))
        remaining -= batch.num_rows
        share = batch.num_rows // world
        if share:
            yield batch.slice(rank * share, share)
        if remaining <= 0:
            return


def train_loop(config: dict[str, Any]) -> None:
    """Ray Train entry point (one call per worker)."""
    import ray.train
    import torch
    import torch.distributed as dist

    cfg = TrainConfig.model_validate(config["train"])
    os.environ.update(cfg.env_vars)
    torch.manual_seed(cfg.seed)
    ctx = ray.train.get_context()
    rank = ctx.get_world_rank()
    ds_config = deepspeed_config(cfg)
    import deepspeed

    # adopt the process group Ray Train set up, so DeepSpeed sees the true world size
    deepspeed.init_distributed(dist_backend="nccl" if cfg.use_gpu else "gloo")
    from promptcot_ray.model_paths import local_model_dir

    model_dir = local_model_dir(config["model_dir"], cfg.storage)  # s3:// -> a local copy
    model, tokenizer, _keep = _load_model(cfg, model_dir, ds_config)
    total_steps = config["total_steps"]
    engine, scheduler = _initialize(cfg, model, total_steps, ds_config)
    state = _restore(engine)
    curve: list[dict[str, Any]] = list(state.get("curve", []))
    device = engine.device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    shard = ray.train.get_dataset_shard("train")
    last_loss = curve[-1]["loss"] if curve else float("nan")

    accum_loss, accum_tokens, micro_in_step, step_start = 0.0, 0, 0, time.perf_counter()
    done = engine.global_steps >= total_steps
    for epoch in range(state["epoch"], cfg.epochs):
        if done:
            break
        skip = state["micro_in_epoch"] if epoch == state["epoch"] else 0
        micro = 0
        for batch in _micro_batches(shard, cfg.micro_batch_size, config, ctx):
            micro += 1
            if micro <= skip:  # consumed before the checkpoint this run resumed from
                continue
            rows = batch.to_pylist()
            tensors = {k: torch.tensor(v, device=device) for k, v in collate(rows, pad_id).items()}
            loss = engine(**tensors, use_cache=False).loss  # packed masks need no cache
            engine.backward(loss)
            before = engine.global_steps
            engine.step()
            accum_loss += loss.item()
            accum_tokens += sum(len(r["input_ids"]) for r in rows)  # real tokens, not pads
            micro_in_step += 1
            if engine.global_steps == before:
                continue
            # one optimizer step finished: average over micro-batches and workers
            # on the engine's device: NCCL reduces CUDA tensors only
            stats = torch.tensor([accum_loss / micro_in_step, float(accum_tokens)], device=device)
            dist.all_reduce(stats)
            seconds = time.perf_counter() - step_start
            last_loss = float(stats[0]) / ctx.get_world_size()
            state["tokens"] += int(stats[1])
            row = {
                "step": engine.global_steps,
                "epoch": epoch,
                "loss": round(last_loss, 6),
                "lr": scheduler.get_last_lr()[0],
                "tokens": int(stats[1]),
                "step_seconds": round(seconds, 4),
                "tokens_per_s": round(float(stats[1]) / max(seconds, 1e-9), 1),
            }
            curve.append(row)
            if rank == 0:
                logger.info(
                    "step %d/%d loss %.4f lr %.2e %.0f tokens/s %.2fs/step",
                    row["step"],
                    total_steps,
                    last_loss,
                    row["lr"],
                    row["tokens_per_s"],
                    seconds,
                )
            accum_loss, accum_tokens, micro_in_step = 0.0, 0, 0
            done = engine.global_steps >= total_steps
            if engine.global_steps % cfg.checkpoint_every_steps == 0 or done:
                state.update(epoch=epoch, micro_in_epoch=micro, curve=curve)
                if rank == 0:
                    _write_curve(cfg, curve)
                resumed = {"resumed_from_step": state.get("resumed_from_step")}
                _save(engine, state, {"step": engine.global_steps, "loss": last_loss, **resumed})
            step_start = time.perf_counter()
            if done:
                break
    if cfg.export:
        info = {
            "base_model": cfg.base_model,
            "steps": engine.global_steps,
            "final_loss": last_loss,
            "tokens": state["tokens"],
            "config_hash": config["config_hash"],
        }
        _export(cfg, engine, tokenizer, info)
    if rank == 0:
        _write_curve(cfg, curve)
    ray.train.report({"step": engine.global_steps, "loss": last_loss, "done": True})


def curve_from_csv(text: str) -> list[dict[str, Any]]:
    """Parse a saved loss curve (for reports and tests)."""
    lines = [line for line in text.splitlines() if line.strip()]
    header = lines[0].split(",")
    return [dict(zip(header, map(_number, line.split(",")), strict=True)) for line in lines[1:]]


def _number(text: str) -> float | int:
    try:
        return json.loads(text)
    except json.JSONDecodeError:  # nan, inf (a diverged loss) are not JSON
        return float(text)
