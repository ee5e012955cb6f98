"""The pipeline's report stage talks to the S3 endpoint of the pipeline's YAML (not only the
environment's): before, it rebuilt a default StorageConfig and went to AWS instead."""

from __future__ import annotations

import time

from promptcot_ray.config import StorageConfig
from promptcot_ray.ledger import StageRecord, append_records
from promptcot_ray.pipeline.config import PipelineConfig, StageSpec
from promptcot_ray.pipeline.job import _run_stage
from promptcot_ray.pipeline.stages import Stage
from promptcot_ray.storage import RunDir

SPECS = (
    "concepts",
    "rationales",
    "train_generator",
    "synthesize",
    "quality",
    "distill",
    "train_student",
    "evaluate",
)


def test_report_of_an_s3_run_whose_endpoint_is_only_in_the_yaml(s3_server, monkeypatch):
    import boto3

    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):  # nothing in the environment
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret")
    bucket = f"report-{int(time.time() * 1000)}"
    boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1").create_bucket(Bucket=bucket)
    uri = f"s3://{bucket}/runs/r1"
    storage = StorageConfig(run_dir=uri, s3_endpoint_url=s3_server, s3_region="us-east-1")
    run = RunDir(uri, storage)
    append_records(
        run,
        [
            StageRecord(
                job="concepts", stage="seeds", rows_in=4, rows_out=3, rejected={"duplicate": 1}
            )
        ],
    )
    cfg = PipelineConfig(storage=storage, **{name: StageSpec() for name in SPECS})

    page = _run_stage(cfg, Stage("report", "report", None, None, None), run)

    assert page == f"{uri}/report/index.html"
    assert "<html" in run.read_text("report/index.html").lower()
