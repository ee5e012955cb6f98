"""A synthesize round resumes on a differently sized cluster, never under other sampling."""

from __future__ import annotations

import pytest

from promptcot_ray.config import load_config
from promptcot_ray.storage import RunDir
from promptcot_ray.synthesis.config import SynthesizeConfig
from promptcot_ray.synthesis.job import JobFailed, check_engine_settings

from .test_cli import REPO

LOCAL = REPO / "jobs" / "configs" / "local.yaml"


def _cfg(*overrides: str) -> SynthesizeConfig:
    return load_config(SynthesizeConfig, LOCAL, list(overrides))


def test_more_replicas_and_other_batch_sizes_resume_the_same_round(tmp_path):
    run = RunDir(str(tmp_path))
    check_engine_settings(run, "synthesis/round-0", _cfg())
    check_engine_settings(
        run,
        "synthesis/round-0",
        _cfg(
            "generator.replicas=16",
            "generator.batch_size=64",
            "judges.0.llm.max_num_seqs=8",
            "judges.1.llm.max_concurrent_batches=4",
        ),
    )


@pytest.mark.parametrize(
    "override", ["generator.temperature=0.9", "judges.1.llm.model=other", "generator.seed=7"]
)
def test_other_sampling_settings_are_refused(tmp_path, override):
    run = RunDir(str(tmp_path))
    check_engine_settings(run, "synthesis/round-0", _cfg())
    with pytest.raises(JobFailed, match="other generator/judge settings"):
        check_engine_settings(run, "synthesis/round-0", _cfg(override))
