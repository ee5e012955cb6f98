"""The `promptcot-ray stage-models` command (registered by cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from promptcot_ray.cli_errors import fail as _fail


def _size(n: int) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


def stage_models_command(
    job: Annotated[
        str,
        typer.Argument(help="The job whose config names the models, e.g. synthesize, or pipeline."),
    ],
    config: Annotated[Path, typer.Option("--config", "-c", help="The job's YAML config.")],
    out: Annotated[
        Path,
        typer.Option("--out", "-o", help="Where to write the config that loads the staged models."),
    ],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="Override a config key first (repeatable)."),
    ] = None,
    to: Annotated[
        str | None,
        typer.Option(
            "--to",
            help="Where the models go: s3://bucket/prefix (or a shared folder). Default: "
            "<storage.run_dir>/models/staged, the run's own bucket.",
        ),
    ] = None,
) -> None:
    """Copy every model a job config loads (generator, judges, teacher, base model) once
    into the run's bucket, and write a config that loads them from there. For a pipeline,
    every stage's models, written back as `set` overrides of the stages that load them.

    Each model lands in <to>/<name>-<fingerprint>/ with a _STAGED.json marker written last;
    a model already staged there is not copied again, so re-running is cheap. Hub names are
    fetched once on this machine first. Run the job with the --out config: vLLM engines and
    the train job download s3:// models on each node themselves (from the bucket, through
    the node's AWS settings), instead of every node pulling from the hub at every start.
    Stage before a run begins: the model names are part of a round's settings.
    """
    from promptcot_ray.config import ConfigError, load_config
    from promptcot_ray.job_configs import JOB_CONFIGS
    from promptcot_ray.staging.models import stage_models
    from promptcot_ray.staging.pipeline import stage_pipeline_models
    from promptcot_ray.storage import StorageError

    if job not in JOB_CONFIGS:
        _fail(f"unknown job {job!r}; choose from {sorted(JOB_CONFIGS)}")
    try:
        cfg = load_config(JOB_CONFIGS[job], config, set_ or [])
        dest = to or f"{cfg.storage.run_dir.rstrip('/')}/models/staged"
        if job == "pipeline":  # every stage's models; `set` overrides in the pipeline config
            data, staged = stage_pipeline_models(cfg, dest)
        else:
            data, staged = stage_models(cfg, dest, cfg.storage)
    except (ConfigError, StorageError) as exc:
        _fail(str(exc))
    import yaml

    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        f"# {job} config with its models staged under {dest} (promptcot-ray stage-models)\n"
        + yaml.safe_dump(data, sort_keys=False)
    )
    for s in staged:
        what = f"copied {s.files} files, {_size(s.bytes)}" if s.copied else s.note
        where = f" -> {s.uri}" if s.uri else ""
        typer.echo(f"{', '.join(s.keys)}: {s.model}{where} ({what})")
    typer.echo(f"wrote {out}; run it with: promptcot-ray {job} --config {out}")
