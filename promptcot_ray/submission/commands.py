"""`promptcot-ray submit` and `promptcot-ray job status|logs|stop`: Ray job submission from
the command line, with the project's entrypoints, runtime environment and secret rules."""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from promptcot_ray.cli_errors import fail as _fail
from promptcot_ray.submission.runtime_env import SubmissionError

AddressOption = Annotated[
    str | None,
    typer.Option(
        "--address",
        help="The cluster's job server, http://HEAD:8265 (default: $RAY_API_SERVER_ADDRESS "
        "or $RAY_ADDRESS). With token auth set RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH.",
    ),
]
JobIdArgument = Annotated[str, typer.Argument(help="The job id `submit` printed.")]

job_app = typer.Typer(
    help="Follow and control submitted jobs: status, logs, stop.", no_args_is_help=True
)


@contextlib.contextmanager
def _job_errors(what: str):
    """Connection, authentication and unknown-job failures as one clear line, exit 2."""
    try:
        yield
    except SubmissionError as exc:
        _fail(str(exc))
    except RuntimeError as exc:  # the SDK's "job not found" and HTTP errors
        _fail(f"cannot {what}: {exc}")


def _relative_config(config: Path, working_dir: Path) -> Path:
    """The config travels inside the uploaded working dir, so it must live there."""
    try:
        return config.resolve().relative_to(working_dir.resolve())
    except ValueError:
        _fail(
            f"the config {config} is outside the working directory {working_dir} that is "
            "uploaded with the job: put it under jobs/configs/ (or pass --working-dir)"
        )
        raise  # unreachable: _fail exits


def submit(
    job: Annotated[str, typer.Argument(help="The job to run: synthesize, concepts, train, ...")],
    config: Annotated[Path, typer.Option("--config", "-c", help="YAML job config.")],
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="Override a config key (repeatable), as for the job."),
    ] = None,
    address: AddressOption = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Stream the job's logs; exit with its status.")
    ] = False,
    working_dir: Annotated[
        Path, typer.Option(help="Uploaded as the job's working directory.")
    ] = Path("."),
    runtime_env: Annotated[
        Path | None,
        typer.Option(help="runtime_env YAML (default: jobs/runtime_env.yaml in the working dir)."),
    ] = None,
    install: Annotated[
        bool,
        typer.Option(
            help="Install the project with its gpu extra on the cluster at job start. Off by "
            "default: the project's image (Dockerfile), which the KubeRay and EC2 configs "
            "run, already has it; use --install on a cluster of the plain Ray image."
        ),
    ] = False,
    env: Annotated[
        list[str] | None,
        typer.Option(
            "--env",
            help="Forward this variable's value from here (repeatable; S3 endpoint and region "
            "and HF_HUB_OFFLINE go by default). Secret-looking names are refused.",
        ),
    ] = None,
    secret: Annotated[
        list[str] | None,
        typer.Option(
            "--secret",
            help="A secret the cluster provides (IRSA, a Kubernetes Secret): only its NAME is "
            "sent, and the job stops at start if the cluster lacks it (repeatable).",
        ),
    ] = None,
    submission_id: Annotated[
        str | None, typer.Option(help="Job id to use (default: Ray picks one).")
    ] = None,
) -> None:
    """Submit a job to a Ray cluster: uploads the working directory (with --install, also
    installs the project), runs `python jobs/<JOB>.py --config FILE --set ...` there and
    prints the job id.

    The config is validated here first, so a bad key fails before anything is sent.
    Secret values never enter the submission: name them with --secret.
    """
    from promptcot_ray.config import ConfigError, load_config
    from promptcot_ray.job_configs import JOB_CONFIGS
    from promptcot_ray.submission import client as jobs
    from promptcot_ray.submission.runtime_env import build_runtime_env, load_runtime_env_file

    if job not in JOB_CONFIGS:
        _fail(f"unknown job {job!r}; choose from {sorted(JOB_CONFIGS)}")
    overrides = set_ or []
    try:
        load_config(JOB_CONFIGS[job], config, overrides)
        default_env_file = working_dir / "jobs" / "runtime_env.yaml"
        env_file = runtime_env or (default_env_file if default_env_file.exists() else None)
        base = load_runtime_env_file(env_file) if env_file else {}
        base["working_dir"] = str(working_dir.resolve())
        submission = jobs.Submission(
            entrypoint=jobs.entrypoint_command(
                job, _relative_config(config, working_dir), overrides
            ),
            runtime_env=build_runtime_env(
                working_dir,
                install=install,
                env_names=env or [],
                secret_names=secret or [],
                base=base,
            ),
            metadata={"promptcot_job": job, "config": config.as_posix()},
            submission_id=submission_id,
        )
        client = jobs.connect(address)
        job_id = jobs.submit(client, submission)
    except (ConfigError, SubmissionError) as exc:
        _fail(str(exc))
    typer.echo(f"submitted {job} as {job_id}")
    if not wait:
        typer.echo(f"follow it with: promptcot-ray job logs {job_id} --follow")
        return
    _follow_to_end(client, job_id)


def _follow_to_end(client, job_id: str) -> None:
    from promptcot_ray.submission import client as jobs

    try:
        status = jobs.follow(client, job_id, lambda text: sys.stdout.write(text))
    except KeyboardInterrupt:
        typer.echo(f"\nstopped following; the job goes on (promptcot-ray job stop {job_id})")
        raise typer.Exit(130) from None
    typer.echo(f"job {job_id} {status}")
    if status != "SUCCEEDED":
        raise typer.Exit(1)


@job_app.command("status")
def status(job_id: JobIdArgument, address: AddressOption = None) -> None:
    """Print a submitted job's status, message and times as JSON."""
    from promptcot_ray.submission import client as jobs

    with _job_errors(f"read job {job_id}"):
        typer.echo(json.dumps(jobs.job_details(jobs.connect(address), job_id), indent=2))


@job_app.command("logs")
def logs(
    job_id: JobIdArgument,
    address: AddressOption = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep streaming until the job ends.")
    ] = False,
) -> None:
    """Print a submitted job's driver logs (with --follow: stream them, exit with its status)."""
    from promptcot_ray.submission import client as jobs

    with _job_errors(f"read job {job_id}"):
        client = jobs.connect(address)
        if follow:
            _follow_to_end(client, job_id)
            return
        typer.echo(client.get_job_logs(job_id), nl=False)


@job_app.command("stop")
def stop(job_id: JobIdArgument, address: AddressOption = None) -> None:
    """Ask the cluster to stop a job. Its outputs so far stay; re-submitting resumes."""
    from promptcot_ray.submission import client as jobs

    with _job_errors(f"stop job {job_id}"):
        stopped = jobs.connect(address).stop_job(job_id)
    typer.echo(f"stop requested for {job_id}" if stopped else f"{job_id} had already ended")
