"""The `promptcot-ray track` command (registered by cli.py): sync any run into MLflow."""

from __future__ import annotations

from typing import Annotated, Any

import typer
import yaml

from promptcot_ray import layout
from promptcot_ray.cli_errors import fail
from promptcot_ray.storage import RunDir

# The frozen configs logged as parameters, each under its own prefix.
CONFIGS = {
    "pipeline": layout.config_file(layout.PIPELINE),
    "synthesize": layout.CONFIG_FILE,
    "quality": layout.config_file(layout.QUALITY),
    "distill": layout.config_file(layout.DISTILL),
}


def run_params(run: RunDir) -> dict[str, Any]:
    """The run's resolved configs (those it froze), keyed by job."""
    return {
        job: yaml.safe_load(run.read_text(rel)) or {}
        for job, rel in CONFIGS.items()
        if run.exists(rel)
    }


def track(
    run: Annotated[
        str,
        typer.Argument(metavar="RUN", help="Run directory: a local path or s3://bucket/prefix."),
    ],
    mlflow_uri: Annotated[
        str,
        typer.Option(help="MLflow tracking URI (http://HOST:5000, sqlite:///f.db, or a folder)."),
    ],
    experiment: Annotated[str, typer.Option(help="MLflow experiment.")] = "promptcot-ray",
) -> None:
    """Log a run to MLflow: every ledger line as metrics, the accept rate per round, loss
    curves, and its frozen configs as parameters. Re-running logs only what changed (a
    pipeline with `tracking.mlflow_uri` set does this after every stage by itself)."""
    from pydantic import ValidationError

    from promptcot_ray.storage import StorageError
    from promptcot_ray.tracking.config import TrackingConfig
    from promptcot_ray.tracking.mlflow_sink import sync

    try:
        cfg = TrackingConfig(mlflow_uri=mlflow_uri, experiment=experiment)
        run_dir = RunDir(run)
        if not run_dir.exists("ledger.jsonl"):
            raise StorageError(f"no run directory at {run_dir.uri} (no ledger.jsonl)")
        run_id = sync(cfg, run_dir, run_params(run_dir))
    except (ValidationError, StorageError) as exc:
        fail(str(exc))
    typer.echo(f"logged {run_dir.uri} to MLflow run {run_id} at {cfg.mlflow_uri}")
