"""Read rows from wherever a user keeps them: a run-directory dataset, or a JSONL/Parquet
file or folder on local disk or S3. One reader, so every job accepts the same inputs and
reports a bad line the same way (file and line number)."""

from __future__ import annotations

import json
import posixpath
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs

from promptcot_ray.config import ConfigError, StorageConfig
from promptcot_ray.storage import RunDir

ROW_FILE_SUFFIXES = (".parquet", ".jsonl")
READ_THREADS = 16  # JSONL files read at once (I/O- and parse-bound)


def is_external(source: str) -> bool:
    """A file the user brings (URI, absolute path, or an existing local path relative to the
    working directory) rather than a run-directory dataset such as `distill/labels`."""
    import os

    return "://" in source or source.startswith(("/", "./", "../", "~")) or os.path.exists(source)


def jsonl_rows(folder: RunDir, name: str) -> list[dict[str, Any] | str]:
    """The objects of a JSONL file; a line that is not a JSON object comes back as its error
    text ("line N: ..."), so a job can count it as a reasoned rejection or refuse the file.

    Line by line with json.loads, not pyarrow.json: pyarrow stops at the first bad line
    without its number, and seeds keep the good rows around a bad one.
    """
    rows: list[dict[str, Any] | str] = []
    for number, line in enumerate(folder.read_text(name).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            rows.append(f"line {number}: JSONDecodeError: {exc}")
            continue
        rows.append(obj if isinstance(obj, dict) else f"line {number}: not a JSON object")
    return rows


def strict_jsonl_rows(folder: RunDir, name: str, label: str) -> list[dict[str, Any]]:
    """The objects of a JSONL file; the first bad line is a ConfigError naming file and line."""
    rows = jsonl_rows(folder, name)
    bad = next((r for r in rows if isinstance(r, str)), None)
    if bad is not None:
        raise ConfigError(f"{label}: {folder.uri_of(name)} {bad}")
    return rows  # type: ignore[return-value]


def _read_files(folder: RunDir, files: list[str], label: str) -> pa.Table:
    """Parquet files through one concurrent pyarrow dataset read, JSONL files on a thread
    pool: never one file after another."""
    parquet = [f for f in files if f.endswith(".parquet")]
    jsonl = [f for f in files if not f.endswith(".parquet")]
    tables = [folder.read_files(parquet)] if parquet else []
    if jsonl:
        with ThreadPoolExecutor(min(len(jsonl), READ_THREADS)) as pool:
            lists = pool.map(lambda f: strict_jsonl_rows(folder, f, label), jsonl)
            tables += [pa.Table.from_pylist(rows) for rows in lists]
    return pa.concat_tables(tables, promote_options="permissive")


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
        return _read_files(folder, files, label)
    return _read_files(folder, [name], label)


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
