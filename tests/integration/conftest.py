"""Integration fixtures: one uninterrupted synthesize run shared by every test that needs it."""

from __future__ import annotations

import pytest

from .helpers import synth_config


@pytest.fixture(scope="session")
def local_run(ray_cluster, tiny_model_path, tmp_path_factory):
    """One synthesize run on the local default (test sizes): (config, summary, run_dir)."""
    from promptcot_ray.synthesis.job import run

    run_dir = str(tmp_path_factory.mktemp("synth") / "run")
    cfg = synth_config(tiny_model_path, run_dir)
    return cfg, run(cfg), run_dir
