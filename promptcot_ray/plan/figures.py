"""Throughput and workload figures the planner prices stages with, and where each comes from.

ESTIMATES, NOT MEASUREMENTS. No GPU has measured these for this project. Each default
names the published figure it was derived from and how. Measured figures replace them:
write a YAML file in the `ThroughputFigures` format (for example
`benchmarks/throughput-measured.yaml`) and pass `promptcot-ray plan --throughput FILE`:

    gpu: H100 80GB SXM
    inference:               # searched before the defaults
      - {params_b: 8, tensor_parallel_size: 1, decode_tokens_per_s: 3400,
         prefill_tokens_per_s: 21000, source: "vllm bench throughput, 2026-12-01"}
    training:                # MFU as benchmarks/train_gpu.py prints it
      - {zero_stage: 2, offload: none, mfu: 0.31, source: "train_gpu.py llama-8b, 8 GPUs"}
    workload:                # any Workload field, e.g. a pilot round's accept rate
      accept_rate: 0.22
    params_b:                # sizes of models whose name does not say them
      /models/my-judge: 72
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from promptcot_ray.config import read_yaml_mapping
from promptcot_ray.plan.configs import PlanError

Offload = Literal["none", "optimizer", "params"]

H100_BF16_DENSE_TFLOPS = 989.0
"""NVIDIA H100 SXM datasheet: 989 dense BF16 TFLOP/s (1,979 with sparsity); the same peak
benchmarks/train_gpu.py divides by."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class InferenceFigure(_Frozen):
    """Throughput of one vLLM replica of a model size at a tensor-parallel size."""

    params_b: float = Field(gt=0, description="Model size in billions of parameters.")
    tensor_parallel_size: int = Field(1, ge=1, description="GPUs per replica.")
    decode_tokens_per_s: float = Field(
        gt=0, description="Output tokens/s per replica under batch load (many sequences)."
    )
    prefill_tokens_per_s: float | None = Field(
        None,
        gt=0,
        description="Prompt tokens/s per replica. None: derived from the GPU's peak FLOP/s "
        "and `prefill_mfu` (prefill is compute-bound).",
    )
    source: str = Field(description="Where the figure comes from (a measurement or a paper).")


class TrainingFigure(_Frozen):
    """Model FLOPs utilisation of the train job for a DeepSpeed setup."""

    zero_stage: Literal[2, 3]
    offload: Offload = Field("none", description="What ZeRO keeps in CPU memory.")
    mfu: float = Field(
        gt=0,
        le=1,
        description="6 x parameters x tokens/s / (GPUs x peak FLOP/s), as "
        "benchmarks/train_gpu.py reports it (recomputation and attention not counted).",
    )
    source: str


class Workload(_Frozen):
    """Rates and typical lengths that turn a target into rows and tokens per stage."""

    accept_rate: float = Field(
        0.25,
        gt=0,
        le=1,
        description="Accepted problems per sampled combination (duplicates, parse failures "
        "and judge rejections all count against it). ASSUMED: the papers give no rate for "
        "two 70B judges in only_perfect mode; measure it with a pilot round "
        "(stats.json: accepted / combinations) and pass it here or as --accept-rate.",
    )
    parse_rate: float = Field(
        0.95,
        gt=0,
        le=1,
        description="Share of drafts that parse and reach the judges (assumed for a trained "
        "generator; the rest get a 1-token dummy request).",
    )
    quality_keep_rate: float = Field(
        0.95,
        gt=0,
        le=1,
        description="Share of accepted problems that pass dedup and decontamination (assumed).",
    )
    label_keep_rate: float = Field(
        0.8,
        gt=0,
        le=1,
        description="Share of distilled problems whose pseudo-label reaches min_confidence "
        "and so give SFT rows (assumed).",
    )
    agree_share: float = Field(
        0.6,
        gt=0,
        le=1,
        description="Share of a problem's samples that agree with its label (select: all).",
    )
    seeds: int = Field(
        6365,
        ge=1,
        description="Seed problems when the concepts config has no seeds.limit (METHOD.md: "
        "the authors used 6,365 AoPS problems).",
    )
    chars_per_token: float = Field(
        4.0,
        gt=0,
        description="Prompt characters per token, to turn the real prompt builders' text into "
        "tokens without loading a tokenizer (the usual ~4 for English BPE vocabularies).",
    )
    seed_problem_tokens: int = Field(110, ge=1, description="A seed or synthetic problem.")
    concept_tokens: int = Field(15, ge=1, description="One foundational concept.")
    concepts_output_tokens: int = Field(
        120, ge=1, description="Extractor reply: 5 concepts and a level line."
    )
    rationale_tokens: int = Field(
        700, ge=1, description="A design rationale (writer output; part of a generator draft)."
    )
    judge_output_tokens: int = Field(
        400, ge=1, description="A judge reply: brief thinking, then six rating lines."
    )
    teacher_output_tokens: int = Field(
        7000,
        ge=1,
        description="A teacher solution. METHOD.md: DeepSeek-R1-Distill-Qwen-7B spends 6,502 "
        "reasoning tokens on PromptCoT problems on average; plus the answer part.",
    )
    eval_output_tokens: int = Field(
        4200,
        ge=1,
        description="A solution in evaluate. METHOD.md: 4,159 reasoning tokens on AIME 2024 "
        "for DeepSeek-R1-Distill-Qwen-7B; GSM8K needs fewer, so this errs high.",
    )
    eval_items: dict[str, int] = Field(
        default_factory=lambda: {"gsm8k": 1319, "math500": 500, "aime2024": 30, "aime2025": 30},
        description="Items per evaluation set by name (the public test splits' sizes).",
    )
    eval_items_default: int = Field(
        500, ge=1, description="Items of a set not named in eval_items and without a limit."
    )
    quality_rows_per_cpu_s: float = Field(
        1887.0,
        gt=0,
        description="Quality-gate rows per CPU-second: benchmarks/README.md measured 400,000 "
        "problems in 106 s on 2 cores (measured here, on CPU).",
    )
    cpu_stage_cpus: int = Field(64, ge=1, description="Cluster CPUs a CPU-only stage gets.")


class ThroughputFigures(_Frozen):
    """The `--throughput` file: measured figures, searched before the defaults below."""

    gpu: str = Field("H100 80GB SXM", description="The GPU every figure is for.")
    peak_tflops: float = Field(
        H100_BF16_DENSE_TFLOPS, gt=0, description="Dense bf16 peak per GPU, TFLOP/s."
    )
    prefill_mfu: float = Field(
        0.4,
        gt=0,
        le=1,
        description="Utilisation of peak during prefill, for figures without a prefill rate "
        "(assumed: prefill is large matmuls, typically 40-60% of peak in vLLM).",
    )
    inference: tuple[InferenceFigure, ...] = ()
    training: tuple[TrainingFigure, ...] = ()
    workload: Workload = Workload()
    params_b: dict[str, float] = Field(
        default_factory=dict,
        description="Billions of parameters by model name, for names that do not say it.",
    )


_VLLM_8B = (
    "MLPerf Inference v5.1, Red Hat's vLLM 0.10.0 entry: Llama-3.1-8B FP8 on one H100, "
    "5,777 output tok/s offline while also prefilling ~6x as many prompt tokens; taken at "
    "~0.5x for bf16 weights and 1-7k-token outputs whose KV cache limits the batch"
)
_SCALED = (
    "geometric mean of two anchors: (a) the 8B figure scaled by 1/params per GPU (decode "
    "reads every weight each step), less {loss} for tensor-parallel all-reduce (Lambda's "
    "vLLM benchmarks: data parallelism beats tensor parallelism whenever the model fits); "
    "(b) MLPerf Inference Llama-2-70B offline on 8xH100 with TensorRT-LLM FP8, ~3k tok/s "
    "per GPU, taken at 1/7 per GPU for vLLM bf16 with long prompts, scaled by 1/params"
)

DEFAULT_INFERENCE: tuple[InferenceFigure, ...] = (
    InferenceFigure(
        params_b=1.5,
        tensor_parallel_size=1,
        decode_tokens_per_s=7000,
        source="vLLM v0.6.0 performance blog (2024-09): small models on one H100 are bound by "
        "CPU-side scheduling, not the GPU; taken as ~2.3x the 8B figure, not 5x",
    ),
    InferenceFigure(params_b=8, tensor_parallel_size=1, decode_tokens_per_s=3000, source=_VLLM_8B),
    InferenceFigure(
        params_b=32,
        tensor_parallel_size=2,
        decode_tokens_per_s=1700,
        source=_SCALED.format(loss="~10% at TP2"),
    ),
    InferenceFigure(
        params_b=32,
        tensor_parallel_size=4,
        decode_tokens_per_s=3000,
        source=_SCALED.format(loss="~20% at TP4"),
    ),
    InferenceFigure(
        params_b=70,
        tensor_parallel_size=4,
        decode_tokens_per_s=1400,
        source=_SCALED.format(loss="~20% at TP4"),
    ),
    InferenceFigure(
        params_b=70,
        tensor_parallel_size=8,
        decode_tokens_per_s=2400,
        source=_SCALED.format(loss="~30% at TP8"),
    ),
)

_LLAMA3_MFU = (
    "Llama 3 paper (Dubey et al. 2024, Table 4): 38-43% bf16 MFU on H100 with Meta's own "
    "4D-parallel stack, an upper bound for HF transformers + DeepSpeed"
)
DEFAULT_TRAINING: tuple[TrainingFigure, ...] = (
    TrainingFigure(
        zero_stage=2,
        offload="none",
        mfu=0.33,
        source=f"{_LLAMA3_MFU}; less ~20% for gradient-checkpointing recomputation, which "
        "6 x params x tokens does not count",
    ),
    TrainingFigure(
        zero_stage=2,
        offload="optimizer",
        mfu=0.25,
        source=f"{_LLAMA3_MFU}; less recomputation and the CPU Adam step plus gradient "
        "copies over PCIe each optimizer step (ZeRO-Offload, Ren et al. 2021), amortised by "
        "gradient accumulation",
    ),
    TrainingFigure(
        zero_stage=3,
        offload="none",
        mfu=0.28,
        source=f"{_LLAMA3_MFU}; less recomputation and a parameter all-gather per layer "
        "in both forward and backward",
    ),
    TrainingFigure(
        zero_stage=3,
        offload="optimizer",
        mfu=0.2,
        source=f"{_LLAMA3_MFU}; ZeRO-3 all-gathers plus the CPU optimizer step",
    ),
    TrainingFigure(
        zero_stage=3,
        offload="params",
        mfu=0.12,
        source=f"{_LLAMA3_MFU}; every layer's weights also cross PCIe in forward and "
        "backward (ZeRO-Infinity, Rajbhandari et al. 2021: offload trades speed for memory)",
    ),
)


def load_figures(path: str | Path | None) -> ThroughputFigures:
    """Read a measured-figures YAML file; None gives the defaults only."""
    if path is None:
        return ThroughputFigures()
    data = read_yaml_mapping(path, "throughput file", PlanError)
    try:
        return ThroughputFigures.model_validate(data)
    except ValidationError as exc:
        lines = [
            f"  {'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
        ]
        raise PlanError(f"throughput file {path} is invalid:\n" + "\n".join(lines)) from None
