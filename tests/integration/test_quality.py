"""The quality job on a local Ray cluster: every reason, matched ids, ledger, S3 round trip."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from promptcot_ray import records as R
from promptcot_ray.concepts.seeds import SEEDS_SCHEMA
from promptcot_ray.ledger import read_ledger
from promptcot_ray.quality.config import QualityConfig
from promptcot_ray.quality.job import run
from promptcot_ray.storage import RunDir
from promptcot_ray.table_schemas import ACCEPTED_SCHEMA
from tests.unit.test_quality_gates import BENCH, SEED, _rows

pytestmark = [pytest.mark.integration, pytest.mark.slow]

EXPECTED = {
    "b": (R.REASON_EXACT_DUPLICATE, "a"),
    "c": (R.REASON_NEAR_DUPLICATE, "a"),
    "d": (R.REASON_CONTAMINATED, "gsm8k-0"),
    "e": (R.REASON_SEED_COPY, "s1"),
    "g": (R.REASON_SEED_COPY, "s1"),
}


def _seed_run(run: RunDir) -> None:
    """A fake finished synthesize round and concepts/seeds, one row per case."""
    rows = []
    for i, (row_id, problem) in enumerate(zip(*_rows().to_pydict().values(), strict=True)):
        row = R.lineage(row_id, ["d" + row_id], "verdict", "gen", "generator-v1", 7, i)
        row.update(combination_id="c" + row_id, concepts=["x"], level="AIME", rationale="r")
        row.update(problem=problem, verdicts="{}", round=0)
        rows.append(row)
    table = pa.Table.from_pylist(rows, schema=ACCEPTED_SCHEMA)
    run.write_table("synthesis/round-0/accepted/part-0.parquet", table.slice(0, 4))
    run.write_table("synthesis/round-0/accepted/part-1.parquet", table.slice(4))
    seed = {R.ID: "s1", "source_index": 0, "problem": SEED, "level": "AIME"}
    seed.update({R.STATUS: R.STATUS_OK, R.STAGE: R.STAGE_SEEDS, R.CREATED_AT: R.now_iso()})
    run.write_table("concepts/seeds/part-00000.parquet", pa.Table.from_pylist([seed], SEEDS_SCHEMA))
    run.mark_complete("concepts/seeds", {"rows": 1})


def _check(run: RunDir, summary) -> None:
    kept = run.read_table("problems")
    removed = {r[R.ID]: r for r in run.read_table("problems-removed").to_pylist()}
    assert sorted(kept[R.ID].to_pylist()) == ["a", "f"]
    assert set(kept[R.STAGE].to_pylist()) == {R.STAGE_QUALITY}
    assert {k: (r[R.REASON], r["matched_id"]) for k, r in removed.items()} == EXPECTED
    assert removed["d"]["matched_source"] == "benchmark:gsm8k" and removed["d"]["ngram"]
    assert removed["c"]["jaccard"] >= 0.8 and removed["c"][R.PARENT_IDS] == ["c"]
    assert run.is_complete("problems") and run.is_complete("problems-removed")
    (line,) = [x for x in read_ledger(run) if x["job"] == "quality"]
    assert (line["rows_in"], line["rows_out"]) == (7, 2)
    assert line["rejected"] == {
        R.REASON_EXACT_DUPLICATE: 1,
        R.REASON_NEAR_DUPLICATE: 1,
        R.REASON_CONTAMINATED: 1,
        R.REASON_SEED_COPY: 2,
    }
    assert summary.kept == 2 and summary.rows_in == 7


def _config(run_dir: str, tmp_path, **storage) -> QualityConfig:
    bench = tmp_path / "gsm8k.jsonl"
    bench.write_text(json.dumps({"id": "gsm8k-0", "problem": BENCH}) + "\n")
    return QualityConfig(
        storage={"run_dir": run_dir, **storage},
        benchmarks=[{"name": "gsm8k", "path": str(bench)}],
        block_rows=16,
    )


def test_quality_local(ray_cluster, tmp_path):
    cfg = _config(str(tmp_path / "run"), tmp_path)
    run = RunDir(cfg.storage.run_dir)
    _seed_run(run)
    _check(run, run_job(cfg))
    _check(run, run_job(cfg))  # a re-run rewrites the same outputs and ledger line


def test_quality_s3_round_trip(ray_cluster, s3_env, tmp_path):
    cfg = _config(f"s3://{s3_env['bucket']}/runs/q", tmp_path)
    run = RunDir(cfg.storage.run_dir, cfg.storage)
    _seed_run(run)
    _check(run, run_job(cfg))
    keys = [o["Key"] for o in s3_env["client"].list_objects_v2(Bucket=s3_env["bucket"])["Contents"]]
    assert any(k.startswith("runs/q/problems-removed/") for k in keys)


def run_job(cfg: QualityConfig):
    return run(cfg)
