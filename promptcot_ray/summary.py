"""The end-of-job summary a person reads: counts by stage and reason, and where outputs are."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from promptcot_ray import records as R
from promptcot_ray.synthesis.job import RunSummary
from promptcot_ray.synthesis.quota import quota_line


def synthesis_table(summary: RunSummary) -> Table:
    c = summary.counts
    table = Table(title=f"synthesize: {summary.run_dir}/{summary.round_dir}", show_lines=False)
    table.add_column("stage")
    table.add_column("outcome")
    table.add_column("rows", justify="right")
    table.add_column("share", justify="right")

    def add(stage: str, outcome: str, n: int) -> None:
        share = f"{100 * n / c.combinations:.1f}%" if c.combinations else "-"
        table.add_row(stage, outcome, str(n), share)

    add("combinations", "sampled", c.combinations)
    for reason in R.COMBINATION_REASONS:
        if c.rejected.get(reason):
            add("combinations", f"rejected: {reason}", c.rejected[reason])
    add("generate", "drafts written", c.drafts)
    for reason, n in sorted(c.generate_rejected.items()):
        add("generate", f"rejected: {reason}", n)
    add("generate", "parsed (rationale + problem)", c.parsed)
    for judge, reasons in sorted(c.judge_rejected.items()):
        for reason, n in sorted(reasons.items()):
            add(f"judge {judge}", f"rejected: {reason}", n)
    for judge, n in sorted(c.judge_calls_saved.items()):
        if n:  # the cascade: an earlier judge had already rejected these drafts
            add(f"judge {judge}", "not called: rejected by an earlier judge", n)
    add("verdict", "ACCEPTED", c.accepted)
    return table


def print_synthesis_summary(summary: RunSummary, console: Console | None = None) -> None:
    console = console or Console()
    console.print(synthesis_table(summary))
    c = summary.counts
    rejected = sum(c.rejected.values())
    console.print(
        f"{c.accepted} accepted + {rejected} rejected = {c.accepted + rejected} of "
        f"{c.combinations} combinations in {summary.seconds:.0f} s"
        + (f" ({summary.resumed_rows} done by an earlier run)" if summary.resumed_rows else ""),
        soft_wrap=True,  # one line in logs, whatever the terminal width
    )
    if c.quota:
        console.print(quota_line(c.quota), soft_wrap=True)
    if c.combinations and c.accepted == 0 and c.parsed == 0:
        console.print(
            "[yellow]No draft parsed: expected with the random tiny model (it writes "
            "gibberish). Point generator.model at a trained generator for real output.[/]"
        )
    for name, uri in summary.outputs.items():
        console.print(f"  {name:<11} {uri}")


def _reasons(console: Console, rejected: dict[str, int]) -> None:
    for reason, n in sorted(rejected.items(), key=lambda kv: -kv[1]):
        console.print(f"  rejected: {reason:<36} {n}")


def print_concepts_summary(summary, console: Console | None = None) -> None:  # ConceptsSummary
    console = console or Console()
    console.print(
        f"concepts: {summary.seeds_kept} of {summary.seeds_in} seeds kept, "
        f"{summary.extracted_ok} concept lists parsed, pool of {summary.pool_concepts} "
        f"concepts (version {summary.pool_version}) in {summary.seconds:.0f} s"
    )
    _reasons(console, summary.rejected)
    console.print(f"  pool       {summary.run_dir}/concepts/pool")


def print_rationales_summary(summary, console: Console | None = None) -> None:
    console = console or Console()
    console.print(
        f"rationales: {summary.kept} generator SFT rows from {summary.inputs} seeds "
        f"in {summary.seconds:.0f} s"
    )
    _reasons(console, summary.rejected)
    console.print(f"  data       {summary.run_dir}/rationales/data")


def print_quality_summary(summary, console: Console | None = None) -> None:  # QualitySummary
    console = console or Console()
    removed = sum(summary.rejected.values())
    console.print(
        f"quality: {summary.kept} of {summary.rows_in} accepted problems kept, {removed} "
        f"removed in {summary.seconds:.0f} s",
        soft_wrap=True,
    )
    _reasons(console, summary.rejected)
    for name, uri in summary.outputs.items():
        console.print(f"  {name:<11} {uri}")


def print_train_summary(summary: dict, console: Console | None = None) -> None:
    console = console or Console()
    if summary.get("skipped"):
        console.print(
            f"train: {summary['name']} is already trained with this config "
            f"({summary.get('steps')} steps, final loss {summary.get('final_loss')})",
            soft_wrap=True,
        )
        console.print(f"  export     {summary['export']}")
        return
    console.print(
        f"train: {summary['name']} trained {summary['steps']} steps on {summary['sequences']} "
        f"sequences from {summary['rows']} rows ({summary['truncated']} truncated); loss "
        f"{summary['first_loss']} -> {summary['final_loss']}, {summary['tokens_per_s']} "
        f"tokens/s, {summary['seconds']:.0f} s",
        soft_wrap=True,
    )
    _reasons(console, summary["rejected"])
    if summary.get("export"):
        console.print(f"  export     {summary['export']}")
    console.print(f"  checkpoints {summary['checkpoints']}")


def print_distill_summary(summary, console: Console | None = None) -> None:  # DistillSummary
    console = console or Console()
    console.print(
        f"distill: {summary.problems} problems x samples = {summary.samples} teacher solutions, "
        f"{summary.valid} valid; {summary.labelled} problems labelled, {summary.sft_rows} SFT "
        f"rows in {summary.seconds:.0f} s"
        + (
            f" ({summary.resumed_samples} samples done by an earlier run)"
            if summary.resumed_samples
            else ""
        ),
        soft_wrap=True,
    )
    _reasons(console, summary.rejected_solutions)
    _reasons(console, summary.rejected_problems)
    for name, uri in summary.outputs.items():
        console.print(f"  {name:<11} {uri}")


def evaluate_table(summary) -> Table:  # EvaluateSummary
    table = Table(title=f"evaluate: {summary.name}")
    for column in (
        "benchmark",
        "items",
        "runs",
        "accuracy (mean ± std)",
        "reasoning tokens",
        "timeouts",
        "no answer",
    ):
        table.add_column(column, justify="left" if column == "benchmark" else "right")
    for name, s in summary.benchmarks.items():
        table.add_row(
            name,
            str(s["items"]),
            str(s["runs"]),
            f"{100 * s['accuracy_mean']:.1f} ± {100 * s['accuracy_std']:.1f}",
            f"{s['mean_reasoning_tokens']:.0f}",
            str(s["timeouts"]),
            str(s["no_answer"]),
        )
    return table


def print_evaluate_summary(summary, console: Console | None = None) -> None:
    console = console or Console()
    console.print(evaluate_table(summary))
    if summary.difficulty:
        table = Table(title="difficulty (lower solve rate, more reasoning tokens = harder)")
        for column in ("set", "solve rate", "mean reasoning tokens"):
            table.add_column(column, justify="left" if column == "set" else "right")
        for name, d in summary.difficulty.items():
            table.add_row(
                name, f"{100 * d['solve_rate']:.1f}%", f"{d['mean_reasoning_tokens']:.0f}"
            )
        console.print(table)
    for name, uri in summary.outputs.items():
        console.print(f"  {name:<11} {uri}")


def print_pipeline_summary(summary, console: Console | None = None) -> None:  # PipelineSummary
    console = console or Console()
    table = Table(title=f"pipeline: {summary.run_dir}")
    table.add_column("stage")
    table.add_column("state")
    table.add_column("seconds", justify="right")
    for stage in summary.stages:
        table.add_row(stage.name, stage.status, f"{stage.seconds:.0f}" if stage.seconds else "-")
    console.print(table)
    for k, (accepted, combinations) in sorted(summary.accept_rates.items()):
        rate = f"{100 * accepted / combinations:.1f}%" if combinations else "-"
        console.print(f"round {k}: {accepted} of {combinations} combinations accepted ({rate})")
    if summary.report:
        console.print(f"report: {summary.report}")
    console.print(f"done in {summary.seconds:.0f} s", soft_wrap=True)
