"""Print a plan: one row per engine pool or trainer, the bounding stage, totals, sources."""

from __future__ import annotations

from rich.console import Console, JustifyMethod
from rich.table import Table
from rich.text import Text

from promptcot_ray.plan.estimate import PartEstimate, StageEstimate, fmt_count
from promptcot_ray.plan.planner import Plan
from promptcot_ray.plan.stages import RUN_MODEL


def fmt_hours(seconds: float | None) -> str:
    """Seconds as s, min or h; None (an external endpoint) as n/a."""
    if seconds is None:
        return "n/a"
    if seconds < 60:
        return f"{seconds:.0f} s"
    return f"{seconds / 60:.0f} min" if seconds < 3600 else f"{seconds / 3600:,.1f} h"


def _model(part: PartEstimate) -> str:
    run = RUN_MODEL.match(part.model)
    return f"{run.group(1)} (this run)" if run else part.model.rsplit("/", 1)[-1]


def figure_index(plan: Plan) -> dict[str, tuple[int, str]]:
    """Number every throughput figure the plan used, for the table's [n] references."""
    index: dict[str, tuple[int, str]] = {}
    for stage in plan.stages:
        for part in stage.parts:
            key = _figure_key(part)
            if part.detail and key not in index:
                index[key] = (len(index) + 1, part.detail)
    return index


def _figure_key(part: PartEstimate) -> str:
    return f"{part.figure}, {'measured' if part.measured else 'default estimate'}"


def _rate(part: PartEstimate, index: dict[str, tuple[int, str]]) -> str:
    if not part.detail:
        return part.rate
    ref = index[_figure_key(part)][0]
    return f"{part.rate} {'~' if part.scaled else ''}[{ref}]"


def _stage_rows(
    table: Table, stage: StageEstimate, bounding: bool, index: dict[str, tuple[int, str]]
) -> None:
    for i, part in enumerate(stage.parts):
        first = i == 0
        cells = (
            (stage.label + (" *" if bounding else "")) if first else "",
            part.name,
            _model(part),
            part.resources,
            fmt_count(part.requests),
            fmt_count(part.tokens) if part.tokens else "-",
            _rate(part, index),
            fmt_hours(part.busy_s),
            fmt_hours(stage.wall_s) if first else "",
            str(stage.gpus) if first else "",
            f"{stage.gpu_hours:,.0f}" if first else "",
        )
        # Text cells: model names and [n] references are not rich markup
        table.add_row(*(Text(c) for c in cells), end_section=i == len(stage.parts) - 1)


def plan_table(plan: Plan) -> Table:
    wl = plan.figures.workload
    table = Table(
        title=f"plan: {plan.target:,} accepted problems at an accept rate of "
        f"{wl.accept_rate:.0%} on {plan.figures.gpu} (estimates)",
    )
    columns: tuple[tuple[str, JustifyMethod], ...] = (
        ("stage", "left"),
        ("part", "left"),
        ("model", "left"),
        ("replicas", "left"),
        ("items", "right"),
        ("tokens", "right"),
        ("out/in tok/s", "right"),
        ("busy", "right"),
        ("wall", "right"),
        ("GPUs", "right"),
        ("GPU-h", "right"),
    )
    for name, justify in columns:
        table.add_column(name, justify=justify)
    bounding, index = plan.bounding.label, figure_index(plan)
    for stage in plan.stages:
        _stage_rows(table, stage, stage.label == bounding, index)
    return table


def plan_lines(plan: Plan) -> list[str]:
    """The text under the table: bound, totals, sizes, notes, assumptions, sources."""
    b, s, wl = plan.bounding, plan.sizes, plan.figures.workload
    busiest = max(b.parts, key=lambda p: p.busy_s or 0.0)
    lines = [
        f"Bounded by: {b.label} ({fmt_hours(b.wall_s)} wall; slowest part: {busiest.name}). "
        "* marks it.",
        f"Total: {fmt_hours(plan.total_wall_s)} ({plan.total_wall_s / 86400:.1f} days) with the "
        f"stages in sequence, {plan.total_gpu_hours:,.0f} GPU-hours, at most "
        f"{plan.peak_gpus} GPUs at once.",
        f"Sizes: {s.seeds:,} seeds; {s.combinations:,} combinations -> {s.accepted:,} accepted "
        f"-> {s.problems:,} after quality -> {s.labelled:,} labelled -> {s.sft_rows:,} SFT rows.",
        f"Assumed: parse rate {wl.parse_rate:.0%}, quality keeps {wl.quality_keep_rate:.0%}, "
        f"labels kept {wl.label_keep_rate:.0%}; typical outputs: rationale "
        f"{wl.rationale_tokens}, judge {wl.judge_output_tokens}, teacher "
        f"{wl.teacher_output_tokens}, evaluation {wl.eval_output_tokens} tokens.",
        "out/in tok/s: decode / prefill tokens per second per replica (trainers: MFU); "
        "busy: the part's own time; a stage holds all its GPUs for its wall time (its "
        "slowest part), so GPU-h = wall x GPUs.",
    ]
    lines += [f"Pipeline: {note}" for note in plan.notes]
    for stage in plan.stages:
        lines += [f"  {stage.label}: {note}" for note in stage.notes]
    lines += [
        f"  skipped {path}: a pipeline config (it names job configs; plan it alone to "
        "price its rounds)"
        for path in plan.skipped
    ]
    lines.append(
        "Throughput figures [n]: ESTIMATES from published benchmarks, not measured here, "
        "unless marked measured (--throughput FILE replaces them); ~[n]: scaled from figure "
        "n to the model's size and TP (1/params per GPU, TP efficiency 1 - 0.1 log2 TP)."
    )
    for key, (n, detail) in figure_index(plan).items():
        lines.append(f"  [{n}] {key}: {detail}")
    return lines


def print_plan(plan: Plan, console: Console | None = None) -> None:
    """Print the plan table and its explanation."""
    console = console or Console()
    console.print(plan_table(plan))
    for line in plan_lines(plan):
        console.print(line, highlight=False, markup=False)
