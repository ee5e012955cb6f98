"""Load the job configs a plan is made from: which job each file is for, with overrides.

Each file is validated by its job's own pydantic config, exactly as the job would load it,
so a plan never prices a config the job would refuse.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from promptcot_ray.config import ConfigError, apply_overrides, load_config, read_yaml_mapping


class PlanError(ValueError):
    """A plan input that cannot be used; the message names the file or key and the fix."""


@dataclass(frozen=True)
class JobFile:
    """One validated job config; `label` (the file name without .yaml) names it in the plan."""

    label: str
    job: str
    path: Path
    cfg: Any


def _read(path: Path) -> dict[str, Any]:
    return read_yaml_mapping(path, error=PlanError)


def detect_job(path: Path, data: dict[str, Any], jobs: dict[str, type[BaseModel]]) -> str:
    """The job a config is for: its `job:` key, else the only job type that validates it."""
    if "job" in data:
        if data["job"] not in jobs:
            raise PlanError(f"{path}: job {data['job']!r} is unknown; choose from {sorted(jobs)}")
        return str(data["job"])
    fits = []
    for name, model in jobs.items():
        try:
            model.model_validate(data)
        except ValidationError:
            continue
        fits.append(name)
    if len(fits) != 1:
        found = f"it validates as {fits}" if fits else "it validates as no job"
        raise PlanError(f"{path}: cannot tell which job it is for ({found}); add `job: NAME`")
    return fits[0]


def split_overrides(overrides: list[str], labels: list[str]) -> dict[str, list[str]]:
    """Route `LABEL.key=value` overrides to the config whose file name is LABEL."""
    routed: dict[str, list[str]] = {label: [] for label in labels}
    for text in overrides:
        label, dot, rest = text.partition(".")
        if not dot or label not in routed:
            raise PlanError(
                f"override {text!r}: start it with a config's file name, one of {labels} "
                "(e.g. synthesize.generator.replicas=32)"
            )
        routed[label].append(rest)
    return routed


def is_pipeline_config(data: dict[str, Any]) -> bool:
    """A pipeline config names job configs (`stage: {config: FILE}`) instead of being one."""
    if "job" in data:
        return data["job"] == "pipeline"
    return any(isinstance(v, dict) and "config" in v for v in data.values())


def load_job_files(
    paths: list[Path], overrides: list[str] | None = None
) -> tuple[list[JobFile], list[Path]]:
    """Validate every config with its job's model; errors name the file and the key.

    Returns the job files and the pipeline configs that were skipped, so that
    `--config jobs/configs/400k/*.yaml` works when a pipeline.yaml sits beside the jobs.
    """
    from promptcot_ray.job_configs import JOB_CONFIGS

    if not paths:
        raise PlanError("give at least one job config (e.g. plan jobs/configs/400k/*.yaml)")
    labels = [Path(p).stem for p in paths]
    if len(set(labels)) != len(labels):
        raise PlanError(f"config file names must differ (they label the stages): {labels}")
    routed = split_overrides(overrides or [], labels)
    files, skipped = [], []
    for path, label in zip(paths, labels, strict=True):
        path = Path(path)
        data = _read(path)
        if is_pipeline_config(data):
            skipped.append(path)
            continue
        try:
            job = detect_job(path, apply_overrides(data, routed[label]), JOB_CONFIGS)
            cfg = load_config(JOB_CONFIGS[job], path, routed[label])
        except ConfigError as exc:
            raise PlanError(f"{path}: {exc}") from None
        files.append(JobFile(label=label, job=job, path=path, cfg=cfg))
    return files, skipped
