"""`promptcot-ray`: one command per job; every job takes --config FILE and --set key=value."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from promptcot_ray.config import ConfigError, SynthesizeConfig, load_config

app = typer.Typer(
    help="PromptCoT problem synthesis on Ray: concept combinations -> vLLM generator -> "
    "LLM judges -> accepted problems, in a resumable run directory (local path or s3://).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="YAML job config (see jobs/configs/). Omit for defaults."),
]
SetOption = Annotated[
    list[str] | None,
    typer.Option(
        "--set",
        "-s",
        help="Override a config key, e.g. --set combinations.num_combinations=400000 "
        "--set judges.0.llm.model=/models/judge (repeatable; values are YAML).",
    ),
]
VerboseOption = Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")]


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


@app.command()
def synthesize(
    config: ConfigOption = None,
    set_: SetOption = None,
    verbose: VerboseOption = False,
) -> None:
    """Sample concept combinations, generate problems, judge them, keep the perfect ones.

    Writes drafts, judgements, accepted and rejected rows (each with a reason) under
    <run_dir>/synthesis/round-<k>/ and one ledger line per stage. Re-running the same command
    resumes: finished combinations are not generated again.
    """
    from promptcot_ray.ray_runtime import connected
    from promptcot_ray.storage import StorageError
    from promptcot_ray.summary import print_synthesis_summary
    from promptcot_ray.synthesis.job import JobFailed, run

    _setup_logging(verbose)
    try:
        cfg = load_config(SynthesizeConfig, config, set_ or [])
        with connected(cfg.ray):
            summary = run(cfg)
    except (ConfigError, StorageError, JobFailed) as exc:
        _fail(str(exc))
    print_synthesis_summary(summary)


@app.command("make-tiny-model")
def make_tiny_model(
    out: Annotated[Path, typer.Argument(help="Folder to write the model and tokenizer into.")],
    hidden_size: Annotated[int, typer.Option(help="Hidden size of the random Llama.")] = 128,
    layers: Annotated[int, typer.Option(help="Transformer layers.")] = 2,
    seed: Annotated[int, typer.Option(help="Weight initialisation seed.")] = 0,
) -> None:
    """Build a tiny random Llama + BPE tokenizer + chat template offline (for demos and tests).

    It loads in vLLM and transformers exactly like a real model, but writes gibberish.
    """
    from promptcot_ray.llm.tiny_model import build_tiny_model

    _setup_logging(False)
    path = build_tiny_model(out, hidden_size=hidden_size, num_layers=layers, seed=seed)
    typer.echo(f"tiny model written to {path}")


@app.command("show-config")
def show_config(
    job: Annotated[str, typer.Argument(help="Job name, e.g. synthesize.")],
    config: ConfigOption = None,
    set_: SetOption = None,
) -> None:
    """Print the fully resolved config of a job (defaults + file + overrides) as YAML."""
    from promptcot_ray.config import JOB_CONFIGS, config_to_yaml

    if job not in JOB_CONFIGS:
        _fail(f"unknown job {job!r}; choose from {sorted(JOB_CONFIGS)}")
    try:
        cfg = load_config(JOB_CONFIGS[job], config, set_ or [])
    except ConfigError as exc:
        _fail(str(exc))
    sys.stdout.write(config_to_yaml(cfg))


if __name__ == "__main__":
    app()
