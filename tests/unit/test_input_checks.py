"""Preflight's look at a folder of row files: the first file answers when it has rows; an
empty first file sends it to the others (footers in one pass), never to a wrong verdict."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from promptcot_ray.config import ConfigError
from promptcot_ray.input_checks import Wanted, check_rows
from promptcot_ray.storage import RunDir

PROBLEM = (Wanted("problem", "problem_column"),)


def _parquet(path, rows: list[dict], schema: pa.Schema | None = None) -> None:
    schema = schema or pa.schema([("problem", pa.string()), ("level", pa.string())])
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)


def test_a_folder_whose_first_parquet_file_is_empty_is_judged_by_the_others(tmp_path):
    (tmp_path / "seeds").mkdir()
    _parquet(tmp_path / "seeds/part-0.parquet", [])
    _parquet(tmp_path / "seeds/part-1.parquet", [{"problem": "1+1?", "level": "AMC"}])
    check_rows("seeds.path", RunDir(str(tmp_path)), "seeds", PROBLEM)  # no error
    with pytest.raises(ConfigError, match=r"no column 'answer'.*\['problem', 'level'\]"):
        check_rows("seeds.path", RunDir(str(tmp_path)), "seeds", (Wanted("answer", "a"),))


def test_an_empty_jsonl_file_first_takes_the_columns_from_the_first_file_with_bytes(tmp_path):
    (tmp_path / "seeds").mkdir()
    (tmp_path / "seeds/a.jsonl").write_text("")
    (tmp_path / "seeds/b.jsonl").write_text('{"question": "1+1?"}\n')
    with pytest.raises(ConfigError, match=r"no column 'problem'; columns found: \['question'\]"):
        check_rows("seeds.path", RunDir(str(tmp_path)), "seeds", PROBLEM)


def test_a_folder_of_files_without_rows_is_empty(tmp_path):
    (tmp_path / "seeds").mkdir()
    for i in range(3):
        _parquet(tmp_path / f"seeds/part-{i}.parquet", [])
    (tmp_path / "seeds/z.jsonl").write_text("")
    with pytest.raises(ConfigError, match=r"seeds.path: .*seeds is empty \(no rows\)"):
        check_rows("seeds.path", RunDir(str(tmp_path)), "seeds", PROBLEM)


def test_a_later_file_that_is_not_parquet_is_a_clear_error_not_a_pass(tmp_path):
    (tmp_path / "seeds").mkdir()
    _parquet(tmp_path / "seeds/part-0.parquet", [])
    (tmp_path / "seeds/part-1.parquet").write_bytes(b"not parquet at all")
    with pytest.raises(ConfigError, match=r"seeds\.path: cannot read .*seeds"):
        check_rows("seeds.path", RunDir(str(tmp_path)), "seeds", PROBLEM)
