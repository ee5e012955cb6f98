"""Resume and accounting rules: failed rows are retried, finished copies win, the ledger
keeps one line per stage and round, and engine error bodies become counted errors."""

from __future__ import annotations

import pyarrow as pa
import pytest

from promptcot_ray import records as R
from promptcot_ray.config import StorageConfig
from promptcot_ray.error_budget import TooManyErrors, check_error_fraction
from promptcot_ray.ledger import StageRecord, append_records, read_ledger
from promptcot_ray.llm.engine import INFERENCE_ERROR_COLUMN, _FromChatResponse
from promptcot_ray.resume import finished_rows, without_written
from promptcot_ray.storage import RunDir
from promptcot_ray.synthesis.config import PoolConfig


def test_error_rows_are_not_done_and_finished_copies_win(tmp_path):
    run = RunDir(str(tmp_path))
    run.write_table(
        "out/part-1.parquet",
        pa.table(
            {"key": ["a", "b", "c"], R.STATUS: [R.STATUS_OK, R.STATUS_ERROR, R.STATUS_FILTERED]}
        ),
    )
    todo, done = without_written(pa.table({"key": ["a", "b", "c", "d"]}), "key", run, "out", "key")
    assert todo["key"].to_pylist() == ["b", "d"] and done == 2
    rows = [
        {"key": "b", R.STATUS: R.STATUS_ERROR, "n": 1},
        {"key": "b", R.STATUS: R.STATUS_OK, "n": 2},
        {"key": "a", R.STATUS: R.STATUS_OK, "n": 3},
        {"key": "a", R.STATUS: R.STATUS_OK, "n": 4},
    ]
    rows.append({"key": "c", R.STATUS: R.STATUS_ERROR, "n": 5})  # failed, never retried
    chosen = finished_rows(pa.Table.from_pylist(rows), "key")
    assert chosen["n"].to_pylist() == [2, 3, 5]  # one row per key: ok copy, else the first
    assert finished_rows(pa.Table.from_pylist(rows).slice(0, 0), "key").num_rows == 0
    # ids in the order they first appear, even when the kept copy comes later
    retried = [
        {"key": "x", R.STATUS: R.STATUS_ERROR, "n": 10},
        {"key": "y", R.STATUS: R.STATUS_OK, "n": 11},
        {"key": "x", R.STATUS: R.STATUS_OK, "n": 12},
        {"key": "z", R.STATUS: None, "n": 13},  # no status: not an error, kept
    ]
    chosen = finished_rows(pa.Table.from_pylist(retried), "key")
    assert list(zip(chosen["key"].to_pylist(), chosen["n"].to_pylist(), strict=True)) == [
        ("x", 12),
        ("y", 11),
        ("z", 13),
    ]


def test_a_retried_error_does_not_count_against_max_error_fraction():
    """Two of three rationale calls failed once and then succeeded: 1 of 3 candidates, not
    3 of 5 rows, is an error (the rationales job used to count the stale copies)."""
    rows = pa.table(
        {
            "candidate_key": ["a", "b", "a", "b", "c"],
            R.STATUS: [R.STATUS_ERROR, R.STATUS_ERROR, R.STATUS_OK, R.STATUS_OK, R.STATUS_ERROR],
        }
    )
    with pytest.raises(TooManyErrors, match="3 of 5"):
        check_error_fraction(rows, 0.5, "rationale")
    check_error_fraction(finished_rows(rows, "candidate_key"), 0.5, "rationale")  # 1 of 3


def _generate(rows_in: int, rows_out: int, round_index: int) -> StageRecord:
    rejected = {"x": rows_in - rows_out} if rows_in > rows_out else {}
    extra = {"round": round_index}
    return StageRecord(
        job="synthesize",
        stage="generate",
        rows_in=rows_in,
        rows_out=rows_out,
        rejected=rejected,
        extra=extra,
    )


def test_ledger_keeps_one_line_per_job_stage_round(tmp_path):
    run = RunDir(str(tmp_path))
    append_records(run, [_generate(4, 3, 0)])
    append_records(run, [_generate(4, 3, 1)])
    append_records(run, [_generate(5, 5, 0)])  # round 0 again: replaces its line
    lines = read_ledger(run)
    assert [(x["extra"]["round"], x["rows_in"]) for x in lines] == [(1, 4), (0, 5)]


def test_openai_error_body_becomes_a_counted_error():
    adapter = _FromChatResponse(lambda row: {**row, "post": True})
    bad = adapter({"id": "r", "http_response": {"error": {"message": "model not found"}}})
    assert "model not found" in bad[INFERENCE_ERROR_COLUMN] and "post" not in bad
    good = adapter(
        {
            "id": "r",
            "http_response": {
                "choices": [{"message": {"content": "hi"}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1},
            },
        }
    )
    assert (good["generated_text"], good["num_input_tokens"], good["post"]) == ("hi", 3, True)


def test_builtin_pool_is_reused_not_rebuilt_and_a_different_source_is_refused(tmp_path):
    from promptcot_ray.config import ConfigError
    from promptcot_ray.synthesis.pool_source import resolve_pool

    run = RunDir(str(tmp_path / "run"))
    cfg = PoolConfig(source="builtin", embedding="hashed")
    first = resolve_pool(cfg, StorageConfig(), run)
    marker = run.read_json("concepts/pool/_SUCCESS.json")
    again = resolve_pool(cfg, StorageConfig(), run)
    assert again.version == first.version
    assert run.read_json("concepts/pool/_SUCCESS.json") == marker
    lists = tmp_path / "lists.jsonl"
    lists.write_text('{"concepts": ["Parity", "Pigeonhole principle", "Invariants"]}\n')
    with pytest.raises(ConfigError, match="pool version"):
        resolve_pool(PoolConfig(source=str(lists), embedding="hashed"), StorageConfig(), run)
