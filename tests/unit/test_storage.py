"""Local run directories: relative paths, atomic writes, listing, markers, ledger lines."""

from __future__ import annotations

import os

import pyarrow as pa
import pytest

from promptcot_ray.ledger import StageRecord, append_records, read_ledger
from promptcot_ray.storage import RunDir, StorageError


def test_write_read_list(tmp_path):
    run = RunDir(str(tmp_path / "run"))
    run.write_json("a/b/c.json", {"x": 1})
    run.write_table("t/part-1.parquet", pa.table({"id": ["a", "b"]}))
    run.write_table("t/part-2.parquet", pa.table({"id": ["c"]}))
    assert run.read_json("a/b/c.json") == {"x": 1}
    assert run.list_files("t", ".parquet") == ["t/part-1.parquet", "t/part-2.parquet"]
    assert run.read_table("t").column("id").to_pylist() == ["a", "b", "c"]
    assert run.read_table("missing") is None
    assert not [f for f in os.listdir(tmp_path / "run" / "t") if f.startswith("_tmp")]


def test_completion_marker(tmp_path):
    run = RunDir(str(tmp_path))
    assert not run.is_complete("stage")
    run.mark_complete("stage", {"rows": 3})
    assert run.is_complete("stage")
    assert run.read_json("stage/_SUCCESS.json") == {"rows": 3}


def test_ledger_append_and_reconcile(tmp_path):
    run = RunDir(str(tmp_path))
    good = StageRecord(
        job="synthesize", stage="generate", rows_in=10, rows_out=7, rejected={"draft_empty": 3}
    )
    bad = StageRecord(
        job="synthesize", stage="judge", rows_in=10, rows_out=7, rejected={"judge_unparseable": 2}
    )
    append_records(run, [good])
    append_records(run, [bad])
    lines = read_ledger(run)
    assert [x["stage"] for x in lines] == ["generate", "judge"]
    assert good.reconciles() and not bad.reconciles()


def test_preflight_on_unwritable_local_dir(tmp_path):
    target = tmp_path / "file-not-dir"
    target.write_text("x")
    with pytest.raises(StorageError, match="cannot write"):
        RunDir(str(target / "run")).preflight()


def test_unsupported_scheme():
    with pytest.raises(StorageError, match="only local paths and s3://"):
        RunDir("gs://bucket/x")
    with pytest.raises(StorageError, match="s3://bucket/prefix"):
        RunDir("s3:///nobucket")


def test_upload_dir_replaces_the_folder_with_the_local_copy(tmp_path):
    from promptcot_ray.storage import RunDir

    local = tmp_path / "export"
    local.mkdir()
    (local / "config.json").write_text("{}")
    run = RunDir(str(tmp_path / "run"))
    run.write_text("models/x/final/stale.bin", "old")
    run.upload_dir(str(local), "models/x/final")
    assert run.list_files("models/x/final") == ["models/x/final/config.json"]


S3_REFUSED = (
    "When uploading part for key 'run/synthesis/round-0/results/part-1.parquet' in bucket "
    "'b': AWS Error NETWORK_CONNECTION during UploadPart operation: curlCode: 7, Could not "
    "connect to server"
)


class _TaskError(OSError):
    """What Ray raises for a task's OSError: a subclass of the cause, a traceback in str,
    the original as .cause (ray.exceptions.RayTaskError builds it this way)."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(f"ray::Write() (pid=1)\n  File 'sinks.py', line 64\nOSError: {cause}\n")
        self.cause = cause


@pytest.mark.parametrize(
    "error, reason",
    [
        (OSError(S3_REFUSED), S3_REFUSED),
        (_TaskError(OSError(S3_REFUSED + "\nFailed to apply UDF transform")), S3_REFUSED),
        (OSError(28, "No space left on device"), "[Errno 28] No space left on device"),
        (PermissionError(13, "Permission denied"), "[Errno 13] Permission denied"),
    ],
)
def test_storage_failing_mid_job_is_named_in_one_line(error, reason):
    from promptcot_ray.storage import storage_failure

    assert storage_failure(error) == reason
    wrapped = RuntimeError("the executor stopped")
    wrapped.__cause__ = error  # Ray Data re-raises from a SystemException / chains it
    assert storage_failure(wrapped) == reason


@pytest.mark.parametrize(
    "error",
    [
        FileNotFoundError(2, "No such file or directory"),  # a path this code got wrong
        ValueError("bad value"),
        KeyError("column"),
        OSError("a socket this code misused"),
    ],
)
def test_a_bug_is_not_taken_for_a_storage_failure(error):
    from promptcot_ray.storage import storage_failure

    assert storage_failure(error) is None


def test_the_run_dirs_s3_filesystem_keeps_its_retries_through_pickling():
    """Ray tasks get pickled copies; pyarrow's own S3FileSystem pickle drops retry_strategy."""
    import pickle

    import pyarrow.fs as pafs

    from promptcot_ray.config import StorageConfig

    storage = StorageConfig(
        run_dir="s3://b/p", s3_endpoint_url="http://127.0.0.1:9", s3_max_retries=5
    )
    run = pickle.loads(pickle.dumps(RunDir("s3://b/p", storage)))
    assert isinstance(run.fs, pafs.S3FileSystem)
    assert run.fs.settings.max_retries == 5 and run.fs.region == "us-east-1"
    assert StorageConfig(run_dir="s3://b/p").s3_max_retries == 12
