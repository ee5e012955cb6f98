"""The train job's config: which model, which data, how many workers, which DeepSpeed setup.

One config type trains both the problem generator (on rationales/ or accepted rows) and the
students (on distill/sft/): both are prompt/completion SFT with loss on the completion only.
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, model_validator

from promptcot_ray import layout
from promptcot_ray.config import RayConfig, StorageConfig, _Frozen


class TrainData(_Frozen):
    """Prompt/completion rows: a run-directory dataset or a file (local or s3://)."""

    source: str = Field(
        layout.RATIONALE_DATA,
        description="A run-directory dataset (relative path such as rationales/data or "
        "distill/sft), or a JSONL/Parquet file or folder given as an absolute path or s3:// URI.",
    )
    prompt_column: str = Field(
        "prompt",
        description="Prompt column: plain text (sent as one user message) or JSON chat "
        "messages (as rationales/ writes them).",
    )
    completion_column: str = Field("completion", description="The SFT target (assistant turn).")
    max_rows: int | None = Field(None, ge=1, description="Use only the first N rows (smoke runs).")


class DeepSpeedSettings(_Frozen):
    """ZeRO stage and offload; the rest of the DeepSpeed config is derived from the job."""

    zero_stage: Literal[2, 3] = Field(
        2, description="2 shards optimizer state and gradients; 3 shards parameters too."
    )
    offload_optimizer: bool = Field(
        False,
        description="Keep optimizer state in CPU memory (ZeRO-Offload; uses DeepSpeed's "
        "CPU Adam, compiled on first use).",
    )
    offload_params: bool = Field(
        False, description="Keep parameters in CPU memory between uses (ZeRO-3 only)."
    )
    extra: dict = Field(
        default_factory=dict,
        description="Raw DeepSpeed config keys merged over the derived config (expert use).",
    )

    @model_validator(mode="after")
    def _check_offload(self) -> DeepSpeedSettings:
        if self.offload_params and self.zero_stage != 3:
            raise ValueError("offload_params needs zero_stage: 3")
        return self


class TrainConfig(_Frozen):
    """The train job: SFT with DeepSpeed ZeRO on Ray Train; checkpoints under models/<name>/."""

    job: Literal["train"] = "train"
    storage: StorageConfig = StorageConfig()
    ray: RayConfig = RayConfig()
    name: str = Field(
        "generator",
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
        description="Model name: checkpoints go to <run>/models/<name>/checkpoints, the "
        "Hugging Face export to <run>/models/<name>/final.",
    )
    base_model: str = Field(
        description="Model to fine-tune: a local path, a hub name, an s3:// folder, or "
        "run:models/<name>/final for a model an earlier train job exported."
    )
    data: TrainData = TrainData()
    num_workers: int = Field(2, ge=1, description="Training workers (one per GPU).")
    use_gpu: bool = Field(True, description="One GPU per worker (NCCL); false = CPU with gloo.")
    cpus_per_worker: float = Field(1.0, gt=0, description="CPUs reserved per worker.")
    deepspeed: DeepSpeedSettings = DeepSpeedSettings()
    precision: Literal["bf16", "fp32"] = Field(
        "bf16", description="bf16 on GPU; fp32 on CPU (CPU bf16 kernels are slow here)."
    )
    learning_rate: float = Field(5e-6, gt=0)
    lr_schedule: Literal["cosine", "linear", "constant"] = Field(
        "cosine", description="Decay after warm-up (to 0 for cosine and linear)."
    )
    warmup_steps: int = Field(100, ge=0, description="Optimizer steps of linear warm-up.")
    warmup_ratio: float | None = Field(
        None,
        ge=0,
        lt=1,
        description="Warm-up as a share of all optimizer steps (replaces warmup_steps when "
        "set): right for any data size, where a fixed count can outlast a small run.",
    )

    def warmup_for(self, total_steps: int) -> int:
        """Warm-up steps for a run of `total_steps` optimizer steps."""
        if self.warmup_ratio is None:
            return self.warmup_steps
        return math.ceil(self.warmup_ratio * total_steps)

    weight_decay: float = Field(0.01, ge=0)
    adam_betas: tuple[float, float] = (0.9, 0.95)
    max_grad_norm: float = Field(1.0, gt=0, description="Gradient clipping.")
    epochs: int = Field(2, ge=1)
    micro_batch_size: int = Field(1, ge=1, description="Sequences per worker per forward pass.")
    gradient_accumulation_steps: int = Field(8, ge=1)
    max_length: int = Field(16384, ge=16, description="Tokens per sequence (prompt + completion).")
    overflow: Literal["truncate", "drop"] = Field(
        "truncate",
        description="Rows longer than max_length: truncate the completion's tail, or drop "
        "the row. Either way the count is in the ledger; a prompt that alone exceeds "
        "max_length is always dropped.",
    )
    gradient_checkpointing: bool = Field(True, description="Recompute activations (less memory).")
    packing: bool = Field(
        False,
        description="Pack several short rows into one max_length sequence (attention stays "
        "within each row). Fewer pad tokens; more tokens per step.",
    )
    attn_implementation: str | None = Field(
        None,
        description="transformers attention backend (e.g. flash_attention_2 on GPU); None "
        "lets transformers choose (sdpa).",
    )
    checkpoint_every_steps: int = Field(
        200, ge=1, description="Optimizer steps between checkpoints (and at the end)."
    )
    keep_checkpoints: int = Field(2, ge=1, description="Checkpoints kept (the newest ones).")
    max_failures: int = Field(
        3, ge=0, description="Worker-group restarts (from the latest checkpoint) before failing."
    )
    seed: int = Field(0, description="Model init of new heads, shuffling, dropout.")
    max_steps: int | None = Field(
        None, ge=1, description="Stop after this many optimizer steps (smoke runs)."
    )
    materialize_max_bytes: int = Field(
        2 * 1024**3,
        ge=0,
        description="Keep the tokenised dataset in the object store when it fits in this "
        "many bytes (tokenised once); larger datasets stream and are re-tokenised each epoch.",
    )
    export: bool = Field(True, description="Write the Hugging Face export to models/<name>/final.")
    env_vars: dict[str, str] = Field(
        default_factory=dict, description="Environment variables for the training workers."
    )
    rehearse: bool = Field(
        False,
        description="Rehearsal (--rehearse): train the tiny offline model instead of "
        "base_model, for at most rehearsal_max_steps steps, on every row of the data.",
    )
    rehearsal_max_steps: int = Field(
        4,
        ge=1,
        description="Optimizer steps of a rehearsal: enough to run checkpointing and export, "
        "few enough that CPUs finish in seconds.",
    )

    @model_validator(mode="after")
    def _check_precision(self) -> TrainConfig:
        if self.precision == "bf16" and not self.use_gpu:
            raise ValueError("precision bf16 needs use_gpu: true; use fp32 on CPU")
        if self.deepspeed.offload_optimizer and not self.use_gpu:
            raise ValueError("deepspeed.offload_optimizer needs use_gpu: true (on CPU it is moot)")
        if (
            self.packing
            and self.micro_batch_size > 1
            and "flash" in (self.attn_implementation or "")
        ):
            # transformers' flash-attention path detects packed rows only at batch size 1;
            # at larger sizes packed examples would silently attend to each other
            raise ValueError(
                "packing with flash attention needs micro_batch_size: 1 (raise "
                "gradient_accumulation_steps instead)"
            )
        return self
