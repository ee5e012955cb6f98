"""The `promptcot-ray export` command (registered by cli.py)."""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from promptcot_ray.cli_errors import fail as _fail


def export(
    run: Annotated[
        str,
        typer.Argument(metavar="RUN", help="Run directory: a local path or s3://bucket/prefix."),
    ],
    fmt: Annotated[
        str,
        typer.Option(
            "--format",
            "-f",
            help="hf (every final problem + card), verl / openrlhf (RL prompts with a "
            "confident pseudo-label), sft (distillation chats), pairs (chosen/rejected).",
        ),
    ],
    to: Annotated[str, typer.Option("--to", help="Destination folder or s3://bucket/prefix.")],
    push_to_hub: Annotated[
        str | None,
        typer.Option(
            "--push-to-hub",
            metavar="REPO",
            help="Also upload the export to this Hugging Face dataset repo (needs network and "
            "a token from HF_TOKEN or `hf auth login`; --to must be local).",
        ),
    ] = None,
    private: Annotated[bool, typer.Option(help="Create the Hub repo as private.")] = True,
    data_source: Annotated[
        str,
        typer.Option(
            help="verl's data_source column: verl picks the reward function by it, so name one "
            "your reward function handles (e.g. lighteval/MATH for verl's boxed-answer scorer)."
        ),
    ] = "promptcot-ray",
    shard_rows: Annotated[int, typer.Option(min=1, help="Rows per data file.")] = 100_000,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Export a run's final problems (after the quality gates, with pseudo-labels when
    distillation ran) for a trainer or the Hugging Face Hub.

    Writes data/train-*.parquet (jsonl for openrlhf), a README.md dataset card generated from
    the run (models, prompt versions, configs, funnel, decontamination, levels, columns) and
    export.json (format, rows, ids). Needs no Ray.
    """
    from promptcot_ray.export.job import EXPECTED_ERRORS, export_run
    from promptcot_ray.export.writers import push_to_hub as push
    from promptcot_ray.storage import RunDir

    logging.basicConfig(level=logging.DEBUG if verbose else logging.WARNING)
    try:
        summary = export_run(run, fmt, to, data_source=data_source, shard_rows=shard_rows)
        if push_to_hub:
            message = f"promptcot-ray export ({fmt}) of {summary.run_dir}"
            summary.hub_url = push(RunDir(to), push_to_hub, private=private, message=message)
    except (*EXPECTED_ERRORS, ValueError) as exc:
        _fail(str(exc))
    typer.echo(f"exported {summary.rows} {fmt} rows to {summary.to} ({len(summary.files)} files)")
    if summary.hub_url:
        typer.echo(f"uploaded to {summary.hub_url}")
