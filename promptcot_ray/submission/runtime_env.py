"""The runtime environment a submitted job runs in: the working directory, how the project
is installed on the cluster, and which environment variables travel with it (by name).

Secret values never enter the runtime environment: Ray shows it in the dashboard, the job
table and its logs. A secret is named instead (`required_secrets`) and the cluster provides
it (IRSA for S3, a Kubernetes Secret or the node's environment for API keys); the job checks
at start that every named secret is there.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from promptcot_ray.config import read_yaml_mapping

# Forwarded when set on the submitting machine: where S3 is, and how models are found.
DEFAULT_FORWARDED = (
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_S3",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "HF_HUB_OFFLINE",
    "HF_ENDPOINT",
)
# Words that mark a variable as secret, matched against the parts of its name split at "_"
# (so HF_TOKEN and AWS_ACCESS_KEY_ID are secret, TOKENIZERS_PARALLELISM is not).
SECRET_WORDS = {
    "SECRET",
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "CREDENTIALS",
    "PRIVATE",
    "SESSION",
    "KEY",
    "APIKEY",
}
REQUIRED_SECRETS_VAR = "PROMPTCOT_REQUIRED_SECRETS"
# Never uploaded: environments, caches, run outputs, VCS data (Ray also honours .gitignore).
EXCLUDES = [".venv", ".venv-*", ".cache", "runs", ".git", "*.egg-info", "__pycache__"]
# Installs the uploaded project with its GPU extra into the job's virtualenv. Ray sets
# RAY_RUNTIME_ENV_CREATE_WORKING_DIR to the unpacked working directory while pip runs.
GPU_INSTALL = "${RAY_RUNTIME_ENV_CREATE_WORKING_DIR}[gpu]"


class SubmissionError(ValueError):
    """A submission that cannot be made as asked (bad names, secrets inlined, bad paths)."""


def is_secret_name(name: str) -> bool:
    return bool(SECRET_WORDS & set(name.upper().split("_")))


def forwarded_env(names: list[str], environ: dict[str, str] | None = None) -> dict[str, str]:
    """Values of the named variables that are set here; refuses names that look secret."""
    environ = os.environ if environ is None else environ
    secret = [name for name in names if is_secret_name(name)]
    if secret:
        raise SubmissionError(
            f"{', '.join(secret)} look(s) like a secret: its value would be stored in the job's "
            "runtime environment in clear. Have the cluster provide it (IRSA, a Kubernetes "
            "Secret, the nodes' environment) and name it with --secret NAME instead."
        )
    return {name: environ[name] for name in names if name in environ}


def build_runtime_env(
    working_dir: Path,
    *,
    install: bool,
    env_names: list[str],
    secret_names: list[str],
    base: dict[str, Any] | None = None,
    environ: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The job's runtime_env: `base` (e.g. jobs/runtime_env.yaml) plus the working directory,
    the install step, forwarded variables and the names of the secrets the job needs."""
    env = dict(base or {})
    env.setdefault("working_dir", str(working_dir))
    env["excludes"] = sorted({*env.get("excludes", []), *EXCLUDES})
    if install:
        env.setdefault("pip", {"packages": [GPU_INSTALL]})
    else:
        env.pop("pip", None)
    names = list(dict.fromkeys([*DEFAULT_FORWARDED, *env_names]))
    env_vars = {**env.get("env_vars", {}), **forwarded_env(names, environ)}
    if secret_names:
        bad = [name for name in secret_names if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name)]
        if bad:
            raise SubmissionError(f"--secret takes variable names, not values: {bad}")
        env_vars[REQUIRED_SECRETS_VAR] = ",".join(secret_names)
    leaked = [n for n in env_vars if is_secret_name(n) and n != REQUIRED_SECRETS_VAR]
    if leaked:
        raise SubmissionError(f"the runtime_env file sets secret-looking variables: {leaked}")
    if env_vars:
        env["env_vars"] = env_vars
    return env


def load_runtime_env_file(path: Path) -> dict[str, Any]:
    """A runtime_env YAML (fields as in Ray's RuntimeEnv); relative paths stay relative."""
    return read_yaml_mapping(path, "runtime env file", SubmissionError)
