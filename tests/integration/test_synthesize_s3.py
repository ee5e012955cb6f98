"""The synthesize job writing to an S3 API served over HTTP on 127.0.0.1 (moto's server)."""

from __future__ import annotations

import io

import pyarrow.parquet as pq
import pytest

from promptcot_ray import records as R
from promptcot_ray.rehearsal import rehearsed
from promptcot_ray.storage import RunDir, StorageError
from promptcot_ray.synthesis.job import run

from .helpers import synth_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _objects(client, bucket: str, prefix: str) -> dict[str, bytes]:
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys += [o["Key"] for o in page.get("Contents", [])]
    return {k: client.get_object(Bucket=bucket, Key=k)["Body"].read() for k in keys}


def test_synthesize_writes_to_s3_and_reads_back_with_boto3(
    ray_cluster, tiny_model_path, s3_env, caplog
):
    client, bucket = s3_env["client"], s3_env["bucket"]
    run_uri = f"s3://{bucket}/runs/demo"
    # storage is the subject, not the engine: the rehearsal stand-in answers (no vLLM start)
    cfg = rehearsed(synth_config(tiny_model_path, run_uri))
    summary = run(cfg)

    objects = _objects(client, bucket, "runs/demo/")
    prefix = "runs/demo/synthesis/round-0/"
    assert f"{prefix}_SUCCESS.json" in objects
    assert "runs/demo/ledger.jsonl" in objects and "runs/demo/config.yaml" in objects
    ids = []
    for name in ("accepted", "rejected"):
        for key, body in objects.items():
            if key.startswith(f"{prefix}{name}/") and key.endswith(".parquet"):
                ids += pq.read_table(io.BytesIO(body)).column("combination_id").to_pylist()
    assert sorted(ids) == sorted(set(ids))
    assert len(ids) == cfg.combinations.num_combinations == summary.counts.combinations
    assert not any("_preflight" in k for k in objects), "preflight probe left behind"

    from tests.conftest import TEST_SECRET as secret

    assert not any(secret.encode() in body for body in objects.values())
    assert secret not in caplog.text


def test_preflight_names_bucket_and_endpoint_when_endpoint_is_wrong(monkeypatch):
    from tests.conftest import free_port

    endpoint = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "k")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "s")
    with pytest.raises(StorageError) as err:
        RunDir("s3://no-such-bucket/prefix").preflight()
    assert "no-such-bucket" in str(err.value) and endpoint in str(err.value)


def test_preflight_fails_for_missing_bucket(s3_env):
    with pytest.raises(StorageError, match="missing-bucket-xyz"):
        RunDir("s3://missing-bucket-xyz/run").preflight()


def test_run_dir_roundtrip_on_s3(s3_env):
    run = RunDir(f"s3://{s3_env['bucket']}/r")
    run.write_json("a/b.json", {"x": 1})
    run.append_jsonl("ledger.jsonl", {"n": 1})
    run.append_jsonl("ledger.jsonl", {"n": 2})
    assert run.read_json("a/b.json") == {"x": 1}
    assert [x["n"] for x in run.iter_jsonl("ledger.jsonl")] == [1, 2]
    assert run.list_files("a") == ["a/b.json"]
    run.mark_complete("a", {"rows": 1})
    assert run.is_complete("a") and not run.is_complete("b")
    assert R.ID == "id"


def test_pool_round_trip_on_s3(s3_env):
    import numpy as np

    from promptcot_ray.concepts.pool import build_pool, hashed_embedding
    from promptcot_ray.concepts.store import read_pool, stored_pool_version, write_pool

    lists = [["Pigeonhole principle", "Parity"], ["Parity", "Invariants", "Graph coloring"]]
    pool = build_pool(lists, hashed_embedding)
    run = RunDir(f"s3://{s3_env['bucket']}/pool-run")
    write_pool(run, pool)
    back = read_pool(run)
    assert back.concepts == pool.concepts and back.version == pool.version
    assert stored_pool_version(run) == pool.version
    assert np.array_equal(back.embeddings, pool.embeddings)
    assert (back.cooccurrence != pool.cooccurrence).nnz == 0
    assert np.array_equal(back.frequency, pool.frequency)


def test_a_ray_tasks_copy_of_the_run_dir_retries_through_a_short_outage(s3_env):
    """What a sink's write task gets is a pickled RunDir: its filesystem must keep the retry
    setting (pyarrow's own pickling drops it). With retries a 2 s outage is ridden out;
    with none the same write fails at once."""
    import pickle
    import time
    from urllib.parse import urlparse

    from promptcot_ray.config import StorageConfig
    from tests.outage_proxy import OutageProxy

    proxy = OutageProxy(urlparse(s3_env["endpoint"]).port).start()
    uri = f"s3://{s3_env['bucket']}/retries"
    try:

        def task_copy(retries: int) -> RunDir:
            storage = StorageConfig(
                run_dir=uri, s3_endpoint_url=proxy.endpoint, s3_max_retries=retries
            )
            return pickle.loads(pickle.dumps(RunDir(uri, storage)))

        patient, impatient = task_copy(12), task_copy(0)
        patient.write_text("before.txt", "ok")  # connections are open when it goes down
        proxy.outage(2.0)
        time.sleep(0.2)
        with pytest.raises(OSError):
            impatient.write_text("impatient.txt", "lost")
        started = time.time()
        patient.write_text("during.txt", "kept")
        assert time.time() - started >= 1.0  # it waited for the endpoint to come back
    finally:
        proxy.stop()
    assert RunDir(uri).read_text("during.txt") == "kept"
    assert not RunDir(uri).exists("impatient.txt")
