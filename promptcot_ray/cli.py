"""`promptcot-ray`: one command per job; every job takes --config FILE and --set key=value."""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from promptcot_ray.cli_errors import fail as _fail
from promptcot_ray.cli_help import reflow_commands
from promptcot_ray.config import ConfigError, load_config
from promptcot_ray.errors import Interrupted, UserError


class _Commands(TyperGroup):
    """Every command's user errors end here: one line, exit 2; a bug keeps its traceback.
    A stop request (SIGTERM, Ctrl-C) prints how to resume and exits 128 + the signal."""

    def invoke(self, ctx: typer.Context) -> object:
        try:
            return super().invoke(ctx)
        except UserError as exc:
            _fail(str(exc))
        except Interrupted as exc:
            typer.secho(f"error: {exc.reason}", fg=typer.colors.RED, err=True)
            raise typer.Exit(exc.exit_code) from None


app = typer.Typer(
    cls=_Commands,
    help="PromptCoT problem synthesis on Ray: concept combinations -> vLLM generator -> "
    "LLM judges -> accepted problems, in a resumable run directory (local path or s3://).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        "-c",
        help="YAML job config (see jobs/configs/; `show-config JOB` prints the resolved one).",
    ),
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
RehearseOption = Annotated[
    bool,
    typer.Option(
        "--rehearse",
        help="Replace every engine call with the instant rehearsal stand-in (no model is "
        "loaded; training runs a few steps of the tiny model) and run the rest for real: "
        "try a full-size config on CPUs before booking GPUs. Needs its own run_dir.",
    ),
]


def _setup_logging(verbose: bool) -> None:
    """Our loggers at INFO (DEBUG with --verbose). Unless --verbose, Ray Data shows no
    progress bars, its console lines (plans, progress dumps every 10 s) go to its session
    log only, and vLLM logs warnings only: through their environment variables for the
    workers of a local Ray (they inherit them), and on Ray Data's console handler and
    context here, where ray.data is already imported."""
    from promptcot_ray.ray_runtime import show_worker_output

    # a local Ray's workers (engines, DeepSpeed, Ray Train) log to its session folder, which
    # is copied into the run directory's logs/ at the end; --verbose shows them here too
    show_worker_output(verbose)
    if not verbose:
        quiet = Path(__file__).parent / "data" / "ray_data_logging.yaml"
        os.environ.setdefault("RAY_DATA_LOGGING_CONFIG", str(quiet))
        os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # each engine's start-up log
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers' bars too
        _quiet_library_loggers()
        import ray.data

        # the context travels with each dataset: Ray Train workers' split iterators too, whose
        # bars kept redrawing long after their epoch ended
        ray.data.DataContext.get_current().enable_progress_bars = False
        for handler in logging.getLogger("ray.data").handlers:
            if isinstance(handler, logging.StreamHandler) and not hasattr(handler, "baseFilename"):
                handler.setLevel(logging.WARNING)  # the console; its file log keeps INFO
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )


class _DropMessages(logging.Filter):
    """Drops records whose message starts with one of `prefixes`."""

    def __init__(self, *prefixes: str) -> None:
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


def _quiet_library_loggers() -> None:
    """Driver-side notices that repeat at every stage and tell a user nothing: ray.data.llm
    calls ray.init() for each processor ("again after it has already been called", "No cloud
    storage mirror configured" at INFO), Ray Data says the bars we turned off are off, and
    vLLM's import reports Triton's absence on CPU."""
    llm = logging.getLogger("ray.llm")
    if not llm.handlers:  # ray.llm's modules then log through this one handler, warnings up
        handler = logging.StreamHandler()
        handler.setLevel(logging.WARNING)
        llm.addHandler(handler)
        llm.propagate = False
    llm.setLevel(logging.WARNING)
    logging.getLogger("ray._private.worker").addFilter(
        _DropMessages("Calling ray.init() again after it has already been called")
    )
    # we turned them off (the job prints its own progress line)
    logging.getLogger("ray.data._internal.progress").addFilter(
        _DropMessages("Progress bars disabled")
    )
    logging.getLogger("vllm.triton_utils").setLevel(logging.ERROR)
    logging.getLogger("sentence_transformers").setLevel(logging.WARNING)


def _run_job(
    job: str,
    config: Path | None,
    overrides: list[str] | None,
    verbose: bool,
    rehearse: bool = False,
):
    """Load the job's config, connect to Ray, run it; known failures exit 2 with a message."""
    from promptcot_ray.guarded import run_guarded
    from promptcot_ray.job_configs import JOBS

    _setup_logging(verbose)
    spec = JOBS[job]
    module = spec.load()
    cfg = load_config(spec.config, config, overrides or [])  # UserErrors: _Commands
    cfg, check_mode = _rehearsal_checked(cfg, rehearse)
    try:  # preflight, cluster check, lease (then the run-mode check), signals
        return run_guarded(cfg, module.run, on_held=check_mode)
    except getattr(module, "EXPECTED_ERRORS", ()) as exc:
        _fail(str(exc))


def _rehearsal_checked(cfg, rehearse: bool):
    """The config as run (rehearsed with --rehearse), and the check that its run directory
    holds rows of the same kind (rehearsal or real) only: it records the mode, so it runs
    once preflight passed and the lease is held (a refused job writes nothing)."""
    from promptcot_ray.rehearsal import check_run_mode, rehearsed, run_mode

    cfg = rehearsed(cfg) if rehearse else cfg
    return cfg, lambda run_dir: check_run_mode(run_dir, run_mode(cfg))


def _job_command(name: str, help_text: str) -> None:
    """Register the command of one registered job (job_configs.JOBS): the same options for
    every job, its summary printed at the end."""

    def command(
        config: ConfigOption = None,
        set_: SetOption = None,
        verbose: VerboseOption = False,
        rehearse: RehearseOption = False,
    ) -> None:
        from promptcot_ray.job_configs import JOBS

        JOBS[name].print_summary(_run_job(name, config, set_, verbose, rehearse))

    command.__name__ = name
    command.__doc__ = help_text
    app.command(name)(command)


def _register_job_commands(names: list[str]) -> None:
    from promptcot_ray.job_configs import JOBS

    for name in names:
        _job_command(name, JOBS[name].help)


_register_job_commands(["synthesize"])  # first in --help: the main job


@app.command()
def pipeline(
    config: ConfigOption = None,
    set_: SetOption = None,
    from_stage: Annotated[
        str | None,
        typer.Option(
            "--from",
            help="Run this stage and every later one even if complete (names: see --list).",
        ),
    ] = None,
    only: Annotated[
        str | None, typer.Option("--only", help="Run just this stage, even if complete.")
    ] = None,
    list_stages: Annotated[
        bool,
        typer.Option(
            "--list",
            help="Print each stage's state, run nothing: complete, or to do and why "
            "(not complete, config changed, an earlier stage re-runs).",
        ),
    ] = False,
    verbose: VerboseOption = False,
    rehearse: RehearseOption = False,
) -> None:
    """The whole method in one resumable command, in one run directory:

    concepts -> rationales -> train generator -> synthesize -> (train the generator on the
    round's accepted problems -> synthesize) x (rounds - 1) -> quality -> distill -> train
    student -> evaluate -> report. Every stage's config is checked before the first starts.
    A stage whose outputs are complete for its config now is skipped, so re-running the same
    command after any failure resumes at the first unfinished stage (and inside it, where the
    job left off); an edited stage config re-runs that stage and every later one.
    """
    from promptcot_ray.guarded import run_guarded
    from promptcot_ray.pipeline.config import PipelineConfig
    from promptcot_ray.pipeline.job import PipelineError, listing, plan
    from promptcot_ray.pipeline.job import run as run_pipeline
    from promptcot_ray.storage import RunDir, StorageError
    from promptcot_ray.summary import print_pipeline_summary

    _setup_logging(verbose)
    try:
        rehearsal = ["rehearse=true"] if rehearse else []  # every stage's config, see stages.py
        cfg = load_config(PipelineConfig, config, [*(set_ or []), *rehearsal])
        if list_stages:
            run_dir = RunDir(cfg.storage.run_dir, cfg.storage)
            plan(cfg)  # every stage's config checked before the run directory is touched
            run_dir.preflight()  # a wrong endpoint or bucket: a clear error, not a traceback
            for line in listing(cfg, run_dir):  # `complete`, or `to do (why)`
                typer.echo(line)
            return
        summary = run_guarded(cfg, lambda c: run_pipeline(c, from_stage, only))
    except (ConfigError, StorageError, PipelineError) as exc:
        _fail(str(exc))
    print_pipeline_summary(summary)


_register_job_commands(["concepts", "rationales", "quality", "train", "distill", "evaluate"])


@app.command()
def report(
    run: Annotated[
        str,
        typer.Argument(metavar="RUN", help="Run directory: a local path or s3://bucket/prefix."),
    ],
    verbose: VerboseOption = False,
) -> None:
    """Write an HTML report of a run to <run>/report/index.html (plots in report/plots/).

    Shows the funnel and accept rate per synthesis round, rejection reasons, difficulty levels
    and concept coverage of accepted problems, judge agreement (confusion matrix, Cohen's
    kappa), problem and solution lengths, loss curves, evaluation results and the cost ledger.
    Parts the run does not have are named on the page. Needs no Ray; opens without a server.
    """
    from promptcot_ray.report.job import EXPECTED_ERRORS, build_report
    from promptcot_ray.storage import StorageError

    _setup_logging(verbose)
    try:
        page = build_report(run)
    except (StorageError, *EXPECTED_ERRORS) as exc:
        _fail(str(exc))
    typer.echo(page)


@app.command("make-tiny-model")
def make_tiny_model(
    out: Annotated[Path, typer.Argument(help="Folder to write the model and tokenizer into.")],
    hidden_size: Annotated[int, typer.Option(help="Hidden size of the random Llama.")] = 128,
    layers: Annotated[int, typer.Option(help="Transformer layers.")] = 2,
    seed: Annotated[int, typer.Option(help="Weight initialisation seed.")] = 0,
    teach_formats: Annotated[
        int,
        typer.Option(
            help="Train this many steps on the project's reply formats (concept lists, "
            "rationale/problem tags, judge ratings) so replies parse; 0 keeps it random.",
        ),
    ] = 0,
) -> None:
    """Build a tiny random Llama + BPE tokenizer + chat template offline (for demos and tests).

    It loads in vLLM and transformers exactly like a real model. Random, it writes
    gibberish; with --teach-formats it answers in the project's formats (content still
    meaningless), so every job stage has parseable replies to work with.
    """
    from promptcot_ray.llm.tiny_model import build_tiny_model

    _setup_logging(False)
    path = build_tiny_model(out, hidden_size=hidden_size, num_layers=layers, seed=seed)
    if teach_formats:
        from promptcot_ray.llm.format_tuning import teach_formats as teach

        loss = teach(path, steps=teach_formats, seed=seed)
        typer.echo(f"taught reply formats for {teach_formats} steps (final loss {loss:.3f})")
    typer.echo(f"tiny model written to {path}")


@app.command("plan")
def plan(
    files: Annotated[
        list[Path] | None,
        typer.Argument(help="Job configs, as --config (a shell glob: jobs/configs/400k/*.yaml)."),
    ] = None,
    config: Annotated[
        list[Path] | None,
        typer.Option(
            "--config",
            "-c",
            help="The run's job configs, one file per job (repeatable). A file's `job:` key "
            "(else the one job it validates as) says which job it is; its file name labels "
            "the stage. A pipeline config given alone is priced stage by stage, every round at its "
            "own target and each generator retraining included; among job configs it is "
            "skipped.",
        ),
    ] = None,
    target: Annotated[
        int | None,
        typer.Option(
            help="Accepted problems the run must produce (default 400,000; a pipeline "
            "config's round_targets give it themselves)."
        ),
    ] = None,
    accept_rate: Annotated[
        float | None,
        typer.Option(
            help="Accepted problems per sampled combination. Default: workload.accept_rate "
            "in --throughput, else an ASSUMED 0.25; measure it with a pilot round "
            "(accepted / combinations in synthesis/round-0/stats.json).",
        ),
    ] = None,
    throughput: Annotated[
        Path | None,
        typer.Option(
            help="YAML of measured figures (format in promptcot_ray/plan/figures.py, e.g. "
            "benchmarks/throughput-measured.yaml): per-replica tokens/s, training MFU, "
            "workload rates. They are used before the built-in estimates.",
        ),
    ] = None,
    params_b: Annotated[
        list[str] | None,
        typer.Option(
            "--params-b",
            help="MODEL=BILLIONS for a model whose name does not state its size, e.g. "
            "--params-b /models/judge=70 (repeatable).",
        ),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            "-s",
            help="Override a key of one config, addressed by its file name: "
            "--set synthesize.generator.replicas=32 (repeatable; values are YAML).",
        ),
    ] = None,
) -> None:
    """Estimate a run before booking GPUs: tokens, wall time and GPU-hours per stage.

    Sizes every stage from the configs for --target accepted problems (combinations =
    target / accept rate; teacher samples, training rows and evaluation runs follow from
    them) and prices it with per-replica throughput: built-in ESTIMATES derived from
    published vLLM and DeepSpeed figures (each source is printed), or measured figures from
    --throughput. Prints the stage that bounds the run, total wall time and GPU-hours.
    Starts nothing and loads no model.
    """
    from promptcot_ray.plan import PlanError, make_plan
    from promptcot_ray.plan.table import print_plan

    try:
        result = make_plan(
            [*(config or []), *(files or [])],
            target=target,
            accept_rate=accept_rate,
            throughput=throughput,
            params_b=params_b,
            overrides=set_,
        )
    except PlanError as exc:
        _fail(str(exc))
    print_plan(result)


@app.command("show-config")
def show_config(
    job: Annotated[str, typer.Argument(help="Job name, e.g. synthesize.")],
    config: ConfigOption = None,
    set_: SetOption = None,
) -> None:
    """Print the fully resolved config of a job (defaults + file + overrides) as YAML."""
    from promptcot_ray.config import config_to_yaml
    from promptcot_ray.job_configs import JOB_CONFIGS

    if job not in JOB_CONFIGS:
        _fail(f"unknown job {job!r}; choose from {sorted(JOB_CONFIGS)}")
    try:
        cfg = load_config(JOB_CONFIGS[job], config, set_ or [])
    except ConfigError as exc:
        _fail(str(exc))
    sys.stdout.write(config_to_yaml(cfg))


def _register_submission_commands() -> None:
    from promptcot_ray.submission.commands import job_app, submit

    app.command("submit")(submit)
    app.add_typer(job_app, name="job")


_register_submission_commands()


def _register_export_command() -> None:
    from promptcot_ray.export.command import export

    app.command("export")(export)


_register_export_command()


def _register_track_command() -> None:
    from promptcot_ray.tracking.command import track

    app.command("track")(track)


_register_track_command()


def _register_stage_models_command() -> None:
    from promptcot_ray.staging.command import stage_models_command

    app.command("stage-models")(stage_models_command)


_register_stage_models_command()


def _register_datasets_command() -> None:
    from promptcot_ray.datasets_command import datasets_command

    app.command("datasets")(datasets_command)


_register_datasets_command()
reflow_commands(app)

if __name__ == "__main__":
    app()
