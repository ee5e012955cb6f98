"""The `promptcot-ray datasets RUN` command (registered by cli.py): what a run directory
holds, dataset by dataset, checked against the catalog."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from promptcot_ray.cli_errors import fail as _fail


def datasets_command(
    run: Annotated[
        str,
        typer.Argument(metavar="RUN", help="Run directory: a local path or s3://bucket/prefix."),
    ],
) -> None:
    """List the datasets a run directory holds: path, producing job, files, rows, whether
    its stage committed it, and whether every file has the columns and types the catalog
    declares. Reads only Parquet footers (concurrently), so it is quick on S3 at 400k rows.

    Exits 1 when a file departs from its declared schema; each departure is printed.

    Needs no Ray. A CI job or a pipeline step can gate on its exit code.
    """
    from promptcot_ray.catalog import check_run
    from promptcot_ray.report.job import NoRunDirectory, open_run
    from promptcot_ray.storage import StorageError

    try:
        found = check_run(open_run(run))
    except (StorageError, NoRunDirectory) as exc:
        _fail(str(exc))
    table = Table("dataset", "path", "made by", "files", "rows", "committed", "schema")
    for f in found:
        schema = "ok" if not f.problems else f"{len(f.problems)} problem(s)"
        if f.dataset.schema is None:
            schema = "-"
        rows = f"{f.rows:,}" if f.dataset.schema is not None else "-"
        committed = "yes" if f.complete else "no"
        table.add_row(
            f.dataset.name, f.rel, f.dataset.producer, str(f.files), rows, committed, schema
        )
    console = Console(width=max(120, Console().width))
    console.print(table)
    problems = [f"{f.rel}/{p}" for f in found for p in f.problems]
    for line in problems:
        console.print(f"[red]schema:[/red] {line}", highlight=False)
    if problems:
        raise typer.Exit(1)
