"""Read rows from wherever a user keeps them: a run-directory dataset, or a JSONL/Parquet
file or folder on local disk or S3. One reader, so every job accepts the same inputs and
reports a bad line the same way (file and line number)."""

from __future__ import annotations

import json
import posixpath

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from promptcot_ray.config import ConfigError, StorageConfig
from promptcot_ray.storage import RunDir

ROW_FILE_SUFFIXES = (".parquet", ".jsonl")


def is_external(source: str) -> bool:
    """A file the user brings (URI, absolute path, or an existing local path relative to the
    working directory) rather than a run-directory dataset such as `distill/labels`."""
    import os

    return "://" in source or source.startswith(("/", "./", "../", "~")) or os.path.exists(source)


def _read_jsonl(folder: RunDir, name: str, label: str) -> list[dict]:
    rows = []
    for number, line in enumerate(folder.read_text(name).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{label}: {folder.uri_of(name)} line {number}: {exc}") from None
        if not isinstance(row, dict):
            raise ConfigError(f"{label}: {folder.uri_of(name)} line {number}: not a JSON object")
        rows.append(row)
    return rows


def _read_file(folder: RunDir, name: str, label: str) -> pa.Table:
    if name.endswith(".parquet"):
        return pq.read_table(folder.path(name), filesystem=folder.fs)
    return pa.Table.from_pylist(_read_jsonl(folder, name, label))


def read_rows(source: str, storage: StorageConfig, run: RunDir | None, label: str) -> pa.Table:
    """All rows of a file or folder. Relative `source`s are read from the run directory.

    `label` names the config key in error messages (e.g. "data.source").
    """
    import os

    if is_external(source):
        source = os.path.expanduser(source)
        parent, name = posixpath.split(source.rstrip("/"))
        folder = RunDir(parent or ".", storage)
    elif run is None:
        raise ConfigError(f"{label}: {source!r} is relative but there is no run directory")
    else:
        folder, name = run, source.strip("/")
    if not folder.exists(name):
        raise ConfigError(f"{label}: nothing at {folder.uri_of(name)}")
    if folder.fs.get_file_info(folder.path(name)).type == pafs.FileType.Directory:
        files = [
            f
            for f in folder.list_files(name)
            if f.endswith(ROW_FILE_SUFFIXES) and not posixpath.basename(f).startswith("_")
        ]  # _SUCCESS.json and other markers are not rows
        if not files:
            raise ConfigError(f"{label}: no .parquet or .jsonl files under {folder.uri_of(name)}")
        tables = [_read_file(folder, f, label) for f in files]
        return pa.concat_tables(tables, promote_options="permissive")
    return _read_file(folder, name, label)


def read_hf(label: str, dataset: str, config: str | None, split: str) -> pa.Table:
    """A Hugging Face dataset split as a table; failure names the key and the offline fix."""
    import datasets

    try:
        data = datasets.load_dataset(dataset, config, split=split)
    except Exception as exc:  # offline, gated, renamed: datasets raises many types
        raise ConfigError(
            f"{label}: cannot load Hugging Face dataset {dataset!r} (split {split!r}): "
            f"{type(exc).__name__}: {exc}. Without network, give a local JSONL file instead "
            f"(path: FILE.jsonl)"
        ) from None
    return data.data.table if hasattr(data, "data") else pa.Table.from_pylist(list(data))
