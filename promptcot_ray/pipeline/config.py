"""The pipeline's config: one run directory and one Ray for all stages, each stage's job config
(a file plus overrides), and the rejection-sampling rounds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, model_validator

from promptcot_ray.config import ConfigError, RayConfig, StorageConfig, _Frozen, validate_config
from promptcot_ray.tracking.config import TrackingConfig


class StageSpec(_Frozen):
    """One job's settings: its YAML file and dotted-key overrides. The pipeline sets the run
    directory, Ray, the round and the model hand-offs itself (see `plan.py`)."""

    config: str | None = Field(
        None, description="The job's YAML, as for the job's own command (relative to the cwd)."
    )
    set: dict[str, Any] = Field(
        default_factory=dict,
        description="Overrides by dotted key, e.g. {generator.max_tokens: 128, "
        "judges.0.llm.model: /models/judge}.",
    )

    def load(self, job: str, forced: dict[str, Any]) -> Any:
        """The validated job config: the file, then `set`, then what the pipeline decides."""
        from promptcot_ray.job_configs import JOB_CONFIGS

        data: dict[str, Any] = {}
        if self.config is not None:
            try:
                data = yaml.safe_load(Path(self.config).read_text()) or {}
            except FileNotFoundError as exc:
                raise ConfigError(f"{job}.config: file not found: {self.config}") from exc
            except yaml.YAMLError as exc:
                raise ConfigError(f"{job}.config: {self.config} is not valid YAML") from exc
        # JSON is YAML: each value reaches the override parser unchanged
        overrides = [f"{k}={json.dumps(v)}" for k, v in [*self.set.items(), *forced.items()]]
        try:
            return validate_config(JOB_CONFIGS[job], data, overrides)
        except ConfigError as exc:
            raise ConfigError(f"stage {job} ({self.config or 'no file'}): {exc}") from None


class PipelineConfig(_Frozen):
    """concepts -> rationales -> train generator -> synthesize -> (retrain on accepted ->
    synthesize) x (rounds - 1) -> quality -> distill -> train student -> evaluate -> report."""

    job: Literal["pipeline"] = "pipeline"
    storage: StorageConfig = StorageConfig()
    ray: RayConfig = RayConfig()
    rounds: int = Field(
        2,
        ge=1,
        description="Synthesis rounds. Round 0 uses the generator trained on the rationales; "
        "round k+1 a generator trained on round k's accepted problems.",
    )
    round_targets: tuple[int, ...] | None = Field(
        None,
        description="Accepted problems per round (one per round): round k's synthesize runs "
        "as a quota round with quota.target_accepted = round_targets[k] (its other quota "
        "settings from the synthesize config). None = each round as its config says.",
    )
    distill_rounds: Literal["all", "last"] = Field(
        "all",
        description="Whose accepted problems go on to the quality gates and distillation: "
        "every round's, or only the last round's (earlier rounds then only train the next "
        "round's generator).",
    )
    retrain_with_rationales: bool = Field(
        True, description="Round k+1's generator data also holds the original rationale rows."
    )
    generator_name: str = Field("generator", description="models/<name> of round 0's generator.")
    student_name: str = Field("student", description="models/<name> of the distilled student.")
    concepts: StageSpec
    rationales: StageSpec
    train_generator: StageSpec = Field(
        description="Round 0's generator SFT; later rounds reuse it with their own data, "
        "starting from the previous round's model."
    )
    synthesize: StageSpec = Field(description="Every round's synthesis (the round is set).")
    quality: StageSpec
    distill: StageSpec
    train_student: StageSpec
    evaluate: StageSpec
    report: bool = Field(True, description="Write report/index.html at the end.")
    tracking: TrackingConfig = Field(
        TrackingConfig(),
        description="Optional MLflow sink, synced after every stage: ledger metrics, the "
        "accept rate per round, loss curves, this config as parameters.",
    )
    rehearse: bool = Field(
        False,
        description="Rehearse every stage (--rehearse): engines replaced by the instant "
        "stand-in, training by a few steps of the tiny model, the rest run for real.",
    )

    @model_validator(mode="after")
    def _check_round_targets(self) -> PipelineConfig:
        targets = self.round_targets
        if targets is not None and (len(targets) != self.rounds or min(targets) < 1):
            raise ValueError(
                f"round_targets: give one target >= 1 per round ({self.rounds} rounds), "
                f"got {list(targets)}"
            )
        return self
