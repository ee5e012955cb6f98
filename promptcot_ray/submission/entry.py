"""What a submitted job runs first: check that the secrets it was promised are there, then run
the job's CLI command inside the cluster (the driver joins the cluster through RAY_ADDRESS)."""

from __future__ import annotations

import os
import sys

from promptcot_ray.submission.runtime_env import REQUIRED_SECRETS_VAR


def missing_secrets(environ: dict[str, str] | None = None) -> list[str]:
    environ = os.environ if environ is None else environ
    names = [n for n in environ.get(REQUIRED_SECRETS_VAR, "").split(",") if n]
    return [name for name in names if not environ.get(name)]


def run_job(job: str, argv: list[str] | None = None) -> None:
    """Entry for jobs/<job>.py: exits 2 with a clear message before any work when a secret
    named at submission is absent on the cluster."""
    missing = missing_secrets()
    if missing:
        sys.stderr.write(
            f"error: the cluster does not provide {', '.join(missing)} (named with --secret at "
            "submission): add it to the head pod's environment from a Kubernetes Secret, or "
            "to the nodes' environment\n"
        )
        raise SystemExit(2)
    from promptcot_ray.cli import app

    app(args=[job, *(sys.argv[1:] if argv is None else argv)], prog_name=f"jobs/{job}.py")
