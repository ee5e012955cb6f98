"""A run directory copied to another path resumes there with nothing redone: a
`run:models/...` teacher enters row ids as written (not as its resolved absolute path), and
the stage's marker hash leaves the run directory out, so the pipeline skips it too."""

from __future__ import annotations

import shutil

import pytest

from promptcot_ray import records as R
from promptcot_ray import stage_marker
from promptcot_ray.config import config_hash, load_config
from promptcot_ray.distill.config import DistillConfig
from promptcot_ray.storage import RunDir

from .helpers import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TOY = REPO / "tests" / "data" / "eval" / "toy.jsonl"


def _cfg(run_dir: str) -> DistillConfig:
    sets = [
        f"storage.run_dir={run_dir}",
        "teacher.model=run:models/teacher/final",
        f"problems={TOY}",
        "samples_per_problem=2",
        "min_valid_samples=1",
    ]
    return load_config(DistillConfig, REPO / "jobs/configs/distill-local.yaml", sets)


def test_a_copied_run_directory_resumes_with_the_same_ids(ray_cluster, format_model_path, tmp_path):
    from promptcot_ray.distill import job as distill

    first = tmp_path / "a" / "run"
    shutil.copytree(format_model_path, first / "models" / "teacher" / "final")
    cfg = _cfg(str(first))
    done = distill.run(cfg)
    assert done.samples == 12 and done.resumed_samples == 0
    run = RunDir(str(first))
    assert stage_marker.why_not_done(run, "distill", config_hash(cfg)) is None
    models = set(run.read_table("distill/solutions", [R.MODEL])[R.MODEL].to_pylist())
    assert models == {"run:models/teacher/final"}  # lineage names the model as written

    second = tmp_path / "b" / "moved"
    shutil.copytree(first, second)
    moved = _cfg(str(second))
    assert stage_marker.why_not_done(RunDir(str(second)), "distill", config_hash(moved)) is None
    again = distill.run(moved)
    assert again.resumed_samples == done.samples  # every sample found: same ids
    ids = [
        sorted(RunDir(str(d)).read_table("distill/solutions", [R.ID])[R.ID].to_pylist())
        for d in (first, second)
    ]
    assert ids[0] == ids[1] and len(ids[0]) == 12
