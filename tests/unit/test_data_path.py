"""The synthesize data path at scale: concurrent column reads, compacted finalize, O(1) re-runs."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from promptcot_ray import records as R
from promptcot_ray.config import load_config
from promptcot_ray.resume import without_written
from promptcot_ray.storage import RunDir
from promptcot_ray.synthesis import job
from promptcot_ray.synthesis.combinations import combinations_table
from promptcot_ray.synthesis.config import CombinationConfig, SynthesizeConfig
from promptcot_ray.synthesis.outputs import finalize
from promptcot_ray.table_schemas import results_schema

from .test_outputs import JUDGES, _result

LOCAL = "jobs/configs/local.yaml"


class _Reads:
    """Counts Parquet reads through a RunDir (both the one-file and the many-file paths)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.files: list[str] = []
        self.columns: list[list[str] | None] = []
        many, both, one = RunDir.parquet_dataset, RunDir.read_files, RunDir.read_parquet_file

        def parquet_dataset(run, files):
            self.files += files
            return many(run, files)

        def read_files(run, files, columns=None):
            self.columns.append(columns)
            return both(run, files, columns)

        def read_parquet_file(run, rel, columns=None):
            self.files.append(rel)
            self.columns.append(columns)
            return one(run, rel, columns)

        monkeypatch.setattr(RunDir, "parquet_dataset", parquet_dataset)
        monkeypatch.setattr(RunDir, "read_files", read_files)
        monkeypatch.setattr(RunDir, "read_parquet_file", read_parquet_file)


def _results_round(run: RunDir, n: int, files: int) -> pa.Table:
    """`n` results rows over `files` id-keyed files; returns the matching combinations."""
    rows = [
        _result(i, i % 3 != 2, ("perfect", "perfect" if i % 2 else "bad"), i % 2 == 1, None)
        for i in range(n)
    ]
    for r in rows:
        if not r["accepted"]:
            r["reason"] = r["reason"] or R.REASON_JUDGE_UNPARSEABLE
    schema = results_schema(2)
    for f in range(files):
        part = pa.Table.from_pylist(rows[f::files], schema=schema)
        run.write_table(f"synthesis/round-0/results/part-{f}.parquet", part)
    return pa.table(
        {
            R.ID: [f"c{i}" for i in range(n)],
            R.SEED: [0] * n,
            R.SAMPLE_INDEX: list(range(n)),
            R.STATUS: [R.STATUS_OK] * n,
            R.REASON: pa.nulls(n, pa.string()),
        }
    )


def _cfg(run_dir: str) -> SynthesizeConfig:
    return load_config(SynthesizeConfig, LOCAL, [f"storage.run_dir={run_dir}"])


def test_second_run_of_a_finished_round_reads_no_results_file(tmp_path, monkeypatch):
    run, cfg = RunDir(str(tmp_path)), _cfg(str(tmp_path))
    combos = _results_round(run, 12, 4)
    counts = finalize(run, "synthesis/round-0", JUDGES, 0, combos)
    job.mark_round_finished(run, "synthesis/round-0", cfg, counts)
    reads = _Reads(monkeypatch)
    again = job.finished_round(run, "synthesis/round-0", cfg)
    assert reads.files == []  # the marker alone: the same cost at 12 rows and at 1.7M
    assert again is not None and again.counts == counts and again.resumed_rows == 12
    changed = cfg.model_copy(update={"acceptance": "lax"})
    assert job.finished_round(run, "synthesis/round-0", changed) is None  # config changed


def test_resume_reads_only_id_and_status_columns_in_one_concurrent_read(tmp_path, monkeypatch):
    run = RunDir(str(tmp_path))
    for f in range(5):
        part = {"key": [f"k{f}"], R.STATUS: [R.STATUS_OK], "text": ["x" * 1000]}
        run.write_table(f"out/part-{f}.parquet", pa.table(part))
    reads = _Reads(monkeypatch)
    todo, done = without_written(pa.table({"key": ["k0", "k9"]}), "key", run, "out", "key")
    assert todo["key"].to_pylist() == ["k9"] and done == 5
    assert reads.columns == [["key", R.STATUS]]  # one call for all five files
    assert sorted(reads.files) == [f"out/part-{f}.parquet" for f in range(5)]


def test_finalize_compacts_outputs_under_names_from_their_ids(tmp_path):
    run = RunDir(str(tmp_path))
    combos = _results_round(run, 30, 10)
    counts = finalize(run, "synthesis/round-0", JUDGES, 0, combos, rows_per_file=12)
    drafts = run.list_files("synthesis/round-0/drafts", ".parquet")
    assert len(drafts) == 3  # 30 rows from 10 results files, 12 per file at least
    table = run.read_table("synthesis/round-0/drafts")
    assert sorted(table[R.ID].to_pylist()) == sorted(f"d{i}" for i in range(30))
    assert counts.drafts == 30 and counts.accepted == 15
    accepted = run.read_table("synthesis/round-0/accepted")
    assert accepted.num_rows == 15 and set(accepted["round"].to_pylist()) == {0}
    # finalized again from the same results: the same files, not new ones beside them
    finalize(run, "synthesis/round-0", JUDGES, 0, combos, rows_per_file=12)
    assert run.list_files("synthesis/round-0/drafts", ".parquet") == drafts


def test_combination_ids_are_the_documented_make_id_and_names_are_taken_vectorised():
    class Pool:
        version, concepts = "pool-v1", ["Pigeonhole", "Parity", "Cyclic groups", "Induction"]

    cfg = CombinationConfig(num_combinations=4, size=2, seed=7, levels=("AIME", "USAMO"))
    ids = np.array([[0, 1], [2, 3], [1, 0], [3, 2]], np.int32)
    levels = np.array([0, 1, 1, 0], np.int8)
    table = combinations_table(Pool(), cfg, 100, (ids, levels), np.array([0, 0, 1, 0], bool))
    for i, row in enumerate(table.to_pylist()):
        level = cfg.levels[levels[i]]
        assert row[R.ID] == R.make_id("combination", "pool-v1", 7, 100 + i, ids[i].tolist(), level)
        assert row["concepts"] == [Pool.concepts[c] for c in ids[i]] and row["level"] == level
        assert row[R.SAMPLE_INDEX] == row["combination_index"] == 100 + i
    assert table[R.REASON].to_pylist() == [None, None, R.REASON_DUPLICATE_COMBINATION, None]


def test_read_table_unifies_files_whose_first_schema_does_not_fit(tmp_path):
    run = RunDir(str(tmp_path))
    run.write_table("t/a.parquet", pa.table({"a": pa.nulls(2), "b": [1, 2]}))
    run.write_table("t/b.parquet", pa.table({"a": ["s"], "b": [3]}))
    table = run.read_table("t")
    assert table["a"].to_pylist() == [None, None, "s"] and table["b"].to_pylist() == [1, 2, 3]
