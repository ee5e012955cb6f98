"""Look at an input file's header, not its rows: does it exist, hold rows, have the columns?

Preflight reads a Parquet footer or the first lines of a JSONL file, so a seeds, benchmark
or training file with a misnamed column fails in a second with the column it lacks and
the columns it has, instead of after engines start (or as every row rejected).
"""

from __future__ import annotations

import json
import os
import posixpath
from dataclasses import dataclass

import pyarrow.fs as pafs
import pyarrow.parquet as pq

from promptcot_ray.config import ConfigError, StorageConfig
from promptcot_ray.sources import ROW_FILE_SUFFIXES, is_external
from promptcot_ray.storage import RunDir

PEEK_BYTES = 1 << 20  # JSONL: the columns are read from the first MiB
PEEK_LINES = 200


@dataclass(frozen=True)
class Wanted:
    """A column an input must have, and the config key that names it (for the fix)."""

    column: str
    key: str


def locate(source: str, storage: StorageConfig, run: RunDir) -> tuple[RunDir, str]:
    """(folder, name) of an input: a user's file, or a dataset inside the run directory."""
    if is_external(source):
        parent, name = posixpath.split(os.path.expanduser(source).rstrip("/"))
        return RunDir(parent or ".", storage), name
    return run, source.strip("/")


def is_dir(folder: RunDir, name: str) -> bool:
    return folder.fs.get_file_info(folder.path(name)).type == pafs.FileType.Directory


def _peek_parquet(folder: RunDir, rel: str) -> tuple[list[str], int]:
    with folder.fs.open_input_file(folder.path(rel)) as f:
        meta = pq.ParquetFile(f)
        return meta.schema_arrow.names, meta.metadata.num_rows


def _peek_jsonl(folder: RunDir, rel: str) -> tuple[list[str], int]:
    with folder.fs.open_input_stream(folder.path(rel)) as f:
        head = f.read(PEEK_BYTES)
    lines = head.decode("utf-8", errors="replace").splitlines()
    if len(head) == PEEK_BYTES and lines:
        lines = lines[:-1]  # the last line may be cut off by the peek
    columns: dict[str, None] = {}
    rows = 0
    for line in lines:
        if not line.strip():
            continue
        rows += 1
        if rows > PEEK_LINES:
            break
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # the readers report bad lines with their numbers
        if isinstance(row, dict):
            columns.update(dict.fromkeys(row))
    return list(columns), rows


def peek(folder: RunDir, rel: str) -> tuple[list[str], int]:
    """(column names, rows seen) of one file; rows are counted only up to the peek."""
    if rel.endswith(".parquet"):
        return _peek_parquet(folder, rel)
    return _peek_jsonl(folder, rel)


def row_files(folder: RunDir, name: str, key: str, file_only: bool) -> list[str]:
    """The files holding an input's rows; a missing input or an empty folder is an error."""
    where = folder.uri_of(name)
    if not folder.exists(name):
        raise ConfigError(f"{key}: nothing at {where}")
    if not is_dir(folder, name):
        return [name]
    if file_only:
        raise ConfigError(f"{key}: {where} is a folder; give a JSONL or Parquet file")
    files = [
        f
        for f in folder.list_files(name)
        if f.endswith(ROW_FILE_SUFFIXES) and not posixpath.basename(f).startswith("_")
    ]
    if not files:
        raise ConfigError(f"{key}: no .parquet or .jsonl files under {where}")
    return files


def _peek_or_fail(key: str, folder: RunDir, rel: str) -> tuple[list[str], int]:
    try:
        return peek(folder, rel)
    except (OSError, ValueError) as exc:  # pyarrow: not Parquet; bad UTF-8
        raise ConfigError(f"{key}: cannot read {folder.uri_of(rel)}: {exc}") from None


def _rows_elsewhere(
    key: str, folder: RunDir, where: str, files: list[str]
) -> tuple[list[str], int]:
    """(columns, rows) of the other files when the first one is empty, in one concurrent
    pass and at most two peeks, never a peek per file: Parquet rows from every footer at
    once (an empty Parquet file still has its schema), JSONL from the first non-empty file
    by size (one listing call)."""
    parquet = [f for f in files if f.endswith(".parquet")]
    jsonl = [f for f in files if not f.endswith(".parquet")]
    columns: list[str] = []
    rows = 0
    if parquet:
        try:
            rows = folder.count_rows(parquet)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{key}: cannot read the Parquet files in {where}: {exc}") from None
        columns, _ = _peek_or_fail(key, folder, parquet[0])
    if jsonl and not rows:
        infos = folder.fs.get_file_info([folder.path(f) for f in jsonl])
        sized = [f for f, info in zip(jsonl, infos, strict=True) if (info.size or 0) > 0]
        if sized:
            columns, rows = _peek_or_fail(key, folder, sized[0])
    return columns, rows


def check_rows(
    key: str, folder: RunDir, name: str, wanted: tuple[Wanted, ...], file_only: bool = False
) -> None:
    """Fail with the key, the path and the columns found unless the input has rows and
    every wanted column. The first file answers (one footer or one MiB, whatever the
    input's size); the others are looked at only when it is empty."""
    where = folder.uri_of(name)
    files = row_files(folder, name, key, file_only)
    columns, rows = _peek_or_fail(key, folder, files[0])
    if not rows and len(files) > 1:
        more, rows = _rows_elsewhere(key, folder, where, files[1:])
        columns += [c for c in more if c not in columns]
    if not rows:
        raise ConfigError(f"{key}: {where} is empty (no rows)")
    for want in wanted:
        if want.column not in columns:
            raise ConfigError(
                f"{key}: {where} has no column {want.column!r}; columns found: {columns} "
                f"(set {want.key} to one of them)"
            )
