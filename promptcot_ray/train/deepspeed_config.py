"""The DeepSpeed config and learning-rate schedule derived from a TrainConfig.

Derived, not hand-written per run, so batch sizes, precision and ZeRO settings can never
disagree with what the Ray Train loop actually does.
"""

from __future__ import annotations

import math
from typing import Any

from promptcot_ray.train.config import TrainConfig


def deepspeed_config(cfg: TrainConfig) -> dict[str, Any]:
    """A DeepSpeed config dict for `deepspeed.initialize(config=...)`."""
    ds = cfg.deepspeed
    zero: dict[str, Any] = {
        "stage": ds.zero_stage,
        "overlap_comm": cfg.use_gpu,
        "contiguous_gradients": True,
        "reduce_bucket_size": 5e7,
    }
    if ds.zero_stage == 3:
        # full weights on save, so the export is a normal Hugging Face checkpoint
        zero["stage3_gather_16bit_weights_on_model_save"] = True
        zero["stage3_prefetch_bucket_size"] = 5e7
        zero["stage3_param_persistence_threshold"] = 1e5
    if ds.offload_optimizer:
        zero["offload_optimizer"] = {"device": "cpu", "pin_memory": True}
    if ds.offload_params:
        zero["offload_param"] = {"device": "cpu", "pin_memory": True}
    config: dict[str, Any] = {
        "train_micro_batch_size_per_gpu": cfg.micro_batch_size,
        "gradient_accumulation_steps": cfg.gradient_accumulation_steps,
        "train_batch_size": cfg.micro_batch_size
        * cfg.gradient_accumulation_steps
        * cfg.num_workers,
        "gradient_clipping": cfg.max_grad_norm,
        "zero_optimization": zero,
        "bf16": {"enabled": cfg.precision == "bf16"},
        "steps_per_print": 10**9,  # progress comes from the loop's own reports
        "wall_clock_breakdown": False,
    }
    if ds.offload_optimizer:
        # ZeRO-Offload steps on the CPU with DeepSpeed's CPU Adam: let DeepSpeed build it.
        config["optimizer"] = {
            "type": "AdamW",
            "params": {
                "lr": cfg.learning_rate,
                "betas": list(cfg.adam_betas),
                "weight_decay": cfg.weight_decay,
            },
        }
    return _merge(config, ds.extra)


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def total_optimizer_steps(cfg: TrainConfig, rows_per_worker: int) -> int:
    """Optimizer steps of the whole run (each worker sees `rows_per_worker` rows an epoch).

    DeepSpeed counts micro-steps across epochs (a partial accumulation carries into the next
    epoch), so the run makes floor(all micro-batches / accumulation) optimizer steps.
    """
    micro_batches = math.ceil(rows_per_worker / cfg.micro_batch_size)
    steps = max(1, micro_batches * cfg.epochs // cfg.gradient_accumulation_steps)
    return min(steps, cfg.max_steps) if cfg.max_steps else steps


def lr_multiplier(step: int, warmup: int, total: int, schedule: str) -> float:
    """Multiplier on the peak learning rate at optimizer step `step` (0-based)."""
    if warmup and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    if schedule == "linear":
        return max(0.0, 1.0 - progress)
    return 0.5 * (1.0 + math.cos(math.pi * progress))
