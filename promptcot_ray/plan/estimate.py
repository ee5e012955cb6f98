"""The planner's arithmetic: per-replica rates, busy time, wall time and GPU-hours.

Pure functions over plain dataclasses, so every rule the plan applies is unit-tested:
an LLM part's busy time is its prompt tokens at the prefill rate plus its output tokens at
the decode rate, split over its replicas; a training part's is 6 x parameters x tokens at
the MFU; a stage holds all its GPUs for its wall time, the longest of its parts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from promptcot_ray.plan.configs import PlanError
from promptcot_ray.plan.figures import (
    DEFAULT_INFERENCE,
    DEFAULT_TRAINING,
    InferenceFigure,
    Offload,
    ThroughputFigures,
    TrainingFigure,
)

SAME_SIZE = 1.25  # a measured figure counts as "this model" within 25% of its size


@dataclass(frozen=True)
class EngineLoad:
    """One LLM engine pool's work in a stage: requests of typical prompt/output length."""

    name: str
    model: str
    params_b: float
    tensor_parallel_size: int
    replicas: int
    requests: int
    prompt_tokens: float
    output_tokens: float
    external: bool = False  # an OpenAI-compatible endpoint: no cluster GPUs, time unknown


@dataclass(frozen=True)
class TrainLoad:
    """One train job: rows x tokens per row x epochs on `workers` GPUs."""

    name: str
    model: str
    params_b: float
    workers: int
    rows: int
    tokens_per_row: float
    epochs: int
    zero_stage: int
    offload: Offload


@dataclass(frozen=True)
class CpuLoad:
    """CPU-only work (the quality gates), priced by a measured rows/CPU-second rate."""

    name: str
    rows: int
    rows_per_cpu_s: float
    cpus: int


Load = EngineLoad | TrainLoad | CpuLoad


@dataclass(frozen=True)
class StageLoad:
    """One job of the run: its parts run at the same time (one streaming pipeline)."""

    label: str
    job: str
    parts: tuple[Load, ...]
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rate:
    """Per-replica throughput for one (model size, TP) and the figure it came from."""

    decode_tokens_per_s: float
    prefill_tokens_per_s: float
    figure: str  # which figure it came from, e.g. "70B TP4"
    scaled: bool  # True when the model size or TP differs from the figure's
    measured: bool
    detail: str  # the figure's own source text


@dataclass(frozen=True)
class PartEstimate:
    """One part's price: `busy_s` is its own time (None: an external endpoint)."""

    name: str
    model: str
    resources: str
    gpus: int
    requests: int
    tokens: float
    busy_s: float | None
    rate: str
    figure: str
    measured: bool
    detail: str
    scaled: bool = False


@dataclass(frozen=True)
class StageEstimate:
    label: str
    job: str
    parts: tuple[PartEstimate, ...]
    wall_s: float
    gpus: int
    notes: tuple[str, ...] = ()

    @property
    def gpu_hours(self) -> float:
        """Every GPU of the stage is held until its slowest part finishes."""
        return self.wall_s / 3600 * self.gpus

    @property
    def tokens(self) -> float:
        return sum(p.tokens for p in self.parts)


def fmt_count(n: float) -> str:
    """1234567 -> '1.23M': counts in the plan span six orders of magnitude."""
    for size, unit in ((1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")):
        if n >= size:
            return f"{n / size:.3g}{unit}"
    return f"{n:.0f}"


def tp_efficiency(tp: int) -> float:
    """Share of linear speed-up kept at tensor-parallel size `tp` (all-reduce per layer)."""
    return max(0.5, 1.0 - 0.1 * math.log2(tp))


def _scale(value: float, fig: InferenceFigure, params_b: float, tp: int) -> float:
    per_gpu = (
        value
        * fig.params_b
        / params_b
        / (fig.tensor_parallel_size * tp_efficiency(fig.tensor_parallel_size))
    )
    return per_gpu * tp * tp_efficiency(tp)


def _nearest(params_b: float, tp: int, figures: ThroughputFigures) -> tuple[InferenceFigure, bool]:
    """A measured figure for this size and TP if any, else the nearest figure of all."""
    for fig in figures.inference:
        ratio = max(fig.params_b / params_b, params_b / fig.params_b)
        if fig.tensor_parallel_size == tp and ratio <= SAME_SIZE:
            return fig, True
    pool = [(f, True) for f in figures.inference] + [(f, False) for f in DEFAULT_INFERENCE]

    def distance(item: tuple[InferenceFigure, bool]) -> float:
        # a factor of 2 in TP counts like a factor of ~1.4 in size: both are scaled for
        fig = item[0]
        return abs(math.log(fig.params_b / params_b)) + 0.35 * abs(
            math.log2(fig.tensor_parallel_size / tp)
        )

    return min(pool, key=distance)


def replica_rate(params_b: float, tp: int, figures: ThroughputFigures) -> Rate:
    """Decode and prefill tokens/s of one replica, scaled from the nearest known figure."""
    fig, measured = _nearest(params_b, tp, figures)
    decode = _scale(fig.decode_tokens_per_s, fig, params_b, tp)
    if fig.prefill_tokens_per_s is not None:
        prefill = _scale(fig.prefill_tokens_per_s, fig, params_b, tp)
    else:  # compute-bound: 2 FLOPs per parameter per prompt token
        prefill = tp * figures.peak_tflops * 1e12 * figures.prefill_mfu / (2 * params_b * 1e9)
    same = fig.params_b == params_b and fig.tensor_parallel_size == tp
    label = f"{fig.params_b:g}B TP{fig.tensor_parallel_size}"
    return Rate(decode, prefill, label, not same, measured, fig.source)


def training_figure(
    zero_stage: int, offload: Offload, figures: ThroughputFigures
) -> tuple[TrainingFigure, bool]:
    """The MFU figure for a DeepSpeed setup: a measured one first, else the default."""
    for pool, measured in ((figures.training, True), (DEFAULT_TRAINING, False)):
        for fig in pool:
            if fig.zero_stage == zero_stage and fig.offload == offload:
                return fig, measured
    raise PlanError(f"no training figure for ZeRO-{zero_stage} with offload {offload!r}")


def llm_busy_seconds(
    requests: float, prompt_tokens: float, output_tokens: float, replicas: int, rate: Rate
) -> float:
    """Seconds a pool of replicas needs for `requests` (prefill and decode share each GPU)."""
    per_request = (
        prompt_tokens / rate.prefill_tokens_per_s + output_tokens / rate.decode_tokens_per_s
    )
    return requests * per_request / replicas


def train_seconds(
    tokens: float, params_b: float, gpus: int, peak_tflops: float, mfu: float
) -> float:
    """Seconds to train on `tokens` tokens: 6 x parameters FLOPs per token at `mfu` of peak."""
    return 6 * params_b * 1e9 * tokens / (gpus * peak_tflops * 1e12 * mfu)


def gpu_hours(wall_s: float, replicas: int, gpus_per_replica: int) -> float:
    """GPU-hours of replicas held for `wall_s` seconds."""
    return wall_s / 3600 * replicas * gpus_per_replica


def combinations_needed(target: int, accept_rate: float) -> int:
    """Combinations to sample so that `accept_rate` of them make `target` accepted problems."""
    if not 0 < accept_rate <= 1:
        raise PlanError(f"accept rate {accept_rate} must be in (0, 1]")
    return math.ceil(target / accept_rate)


def estimate_engine(load: EngineLoad, figures: ThroughputFigures) -> PartEstimate:
    tokens = load.requests * (load.prompt_tokens + load.output_tokens)
    resources = f"{load.replicas} x TP{load.tensor_parallel_size}"
    if load.external:
        return PartEstimate(
            load.name, load.model, "endpoint", 0, load.requests, tokens, None, "-", "", False, ""
        )
    rate = replica_rate(load.params_b, load.tensor_parallel_size, figures)
    busy = llm_busy_seconds(
        load.requests, load.prompt_tokens, load.output_tokens, load.replicas, rate
    )
    return PartEstimate(
        name=load.name,
        model=load.model,
        resources=resources,
        gpus=load.replicas * load.tensor_parallel_size,
        requests=load.requests,
        tokens=tokens,
        busy_s=busy,
        rate=f"{fmt_count(rate.decode_tokens_per_s)} / {fmt_count(rate.prefill_tokens_per_s)}",
        figure=rate.figure,
        measured=rate.measured,
        detail=rate.detail,
        scaled=rate.scaled,
    )


def estimate_training(load: TrainLoad, figures: ThroughputFigures) -> PartEstimate:
    tokens = load.rows * load.tokens_per_row * load.epochs
    fig, measured = training_figure(load.zero_stage, load.offload, figures)
    busy = train_seconds(tokens, load.params_b, load.workers, figures.peak_tflops, fig.mfu)
    return PartEstimate(
        name=load.name,
        model=load.model,
        resources=f"{load.workers} GPUs",
        gpus=load.workers,
        requests=load.rows,
        tokens=tokens,
        busy_s=busy,
        rate=f"MFU {100 * fig.mfu:.0f}%",
        figure=f"ZeRO-{load.zero_stage}, offload {load.offload}",
        measured=measured,
        detail=fig.source,
    )


def estimate_cpu(load: CpuLoad) -> PartEstimate:
    busy = load.rows / (load.rows_per_cpu_s * load.cpus)
    return PartEstimate(
        name=load.name,
        model="-",
        resources=f"{load.cpus} CPUs",
        gpus=0,
        requests=load.rows,
        tokens=0.0,
        busy_s=busy,
        rate=f"{fmt_count(load.rows_per_cpu_s)} rows/CPU-s",
        figure="quality gates on CPU",
        measured=True,
        detail="benchmarks/README.md: 400,000 problems in 106 s on 2 cores (measured here)",
    )


def estimate_stage(stage: StageLoad, figures: ThroughputFigures) -> StageEstimate:
    """Price every part; the stage lasts as long as its slowest part."""
    parts = []
    for load in stage.parts:
        if isinstance(load, EngineLoad):
            parts.append(estimate_engine(load, figures))
        elif isinstance(load, TrainLoad):
            parts.append(estimate_training(load, figures))
        else:
            parts.append(estimate_cpu(load))
    wall = max((p.busy_s for p in parts if p.busy_s is not None), default=0.0)
    return StageEstimate(
        label=stage.label,
        job=stage.job,
        parts=tuple(parts),
        wall_s=wall,
        gpus=sum(p.gpus for p in parts),
        notes=stage.notes,
    )
