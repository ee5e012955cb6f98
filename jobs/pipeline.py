"""Ray job entrypoint: `python jobs/pipeline.py --config FILE` (see jobs/README.md)."""

from promptcot_ray.submission.entry import run_job

run_job("pipeline")
