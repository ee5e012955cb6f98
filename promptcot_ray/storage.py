"""Run directories on local disk or S3: one folder object, atomic writes, preflight.

A run directory is a local path or `s3://bucket/prefix`. Everything goes through pyarrow's
filesystems (S3 through its own client, not s3fs) so Ray Data reads and writes the same
paths; boto3 is used only for the preflight probe, because its errors name the failing
operation clearly. Credentials come from the standard AWS chain and are never logged.
"""

from __future__ import annotations

import errno
import io
import json
import logging
import os
import posixpath
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from promptcot_ray.config import StorageConfig
from promptcot_ray.errors import UserError

logger = logging.getLogger(__name__)

SUCCESS_MARKER = "_SUCCESS.json"
# Concurrent reads: files fetched at once and threads for S3 requests (latency-bound).
READ_OPTIONS = {"use_threads": True, "fragment_readahead": 32, "batch_readahead": 4}
READ_IO_THREADS = 32


class StorageError(UserError, RuntimeError):
    """The run directory cannot be used (wrong endpoint, missing bucket, no permission)."""


# errno values that mean the run directory's disk, not this code, failed
_DISK_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EIO}


def storage_failure(exc: BaseException) -> str | None:
    """The one-line reason when `exc` is the run directory's storage failing (an S3 request
    that ran out of retries, a full or read-only disk), else None (a bug keeps its
    traceback). A Ray task's error counts too: Ray re-raises it as a subclass of the cause."""
    seen: list[BaseException] = [exc]
    while len(seen) < 8:  # RayTaskError keeps the original as .cause; wrappers chain
        err = seen[-1]
        if isinstance(err, OSError):
            lines = [x.strip() for x in str(err).splitlines() if x.strip()]
            aws = [x for x in lines if "AWS Error" in x]  # Ray adds lines of its own around it
            if aws:
                return aws[0].removeprefix("OSError: ")
            if err.errno in _DISK_ERRNOS:
                return lines[0] if lines else type(err).__name__
        nxt = getattr(err, "cause", None) or err.__cause__ or err.__context__
        if not isinstance(nxt, BaseException) or nxt in seen:
            return None
        seen.append(nxt)
    return None


@dataclass(frozen=True)
class S3Settings:
    """Where S3 is, resolved from config then environment; holds no credentials."""

    endpoint_url: str | None
    region: str
    max_retries: int  # StorageConfig.s3_max_retries

    @classmethod
    def resolve(cls, cfg: StorageConfig) -> S3Settings:
        endpoint = (
            cfg.s3_endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )
        region = (
            cfg.s3_region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1"
        )
        return cls(endpoint_url=endpoint or None, region=region, max_retries=cfg.s3_max_retries)

    def pyarrow_fs(self) -> pafs.S3FileSystem:
        return RetryingS3FileSystem(self)

    def fs_options(self) -> dict[str, Any]:
        """pyarrow.fs.S3FileSystem's keyword arguments for these settings."""
        kwargs: dict[str, Any] = {"region": self.region}
        if self.endpoint_url:
            parsed = urlparse(self.endpoint_url)
            kwargs["endpoint_override"] = parsed.netloc or parsed.path
            kwargs["scheme"] = parsed.scheme or "https"
        # Fail within seconds on a wrong endpoint instead of retrying for minutes.
        kwargs["connect_timeout"] = 5
        kwargs["request_timeout"] = 60
        # The AWS SDK's default strategy: backoff doubling from 25 ms, no retry quota (the
        # standard strategy's quota runs dry when every write of a busy round fails at once,
        # which is exactly an outage). The preflight has already refused a wrong endpoint.
        kwargs["retry_strategy"] = pafs.AwsDefaultS3RetryStrategy(max_attempts=self.max_retries)
        return kwargs

    def boto3_client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            config=Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 2}),
        )


class RetryingS3FileSystem(pafs.S3FileSystem):
    """pyarrow's S3 filesystem, pickled with its settings.

    pyarrow's own pickling drops the retry strategy, so every copy a Ray task gets (the
    sinks' writes, Ray Data's reads) would retry 3 times and fail a 1 s outage; this one is
    rebuilt from its S3Settings on the other side, retries included.
    """

    def __init__(self, settings: S3Settings) -> None:
        super().__init__(**settings.fs_options())
        self.settings = settings

    def __reduce__(self) -> tuple[Any, tuple[S3Settings]]:
        return (RetryingS3FileSystem, (self.settings,))


class RunDir:
    """A run directory rooted at a local path or s3:// URI; all paths are relative to it."""

    def __init__(self, uri: str, cfg: StorageConfig | None = None) -> None:
        cfg = cfg or StorageConfig(run_dir=uri)
        self.storage = cfg  # the settings it was opened with (an s3:// model's endpoint)
        self.uri = uri.rstrip("/")
        parsed = urlparse(self.uri)
        self.is_s3 = parsed.scheme in ("s3", "s3a")
        if self.is_s3:
            if not parsed.netloc:
                raise StorageError(f"run_dir {uri!r}: expected s3://bucket/prefix")
            self.s3 = S3Settings.resolve(cfg)
            self.bucket = parsed.netloc
            self.prefix = parsed.path.strip("/")
            self.fs: pafs.FileSystem = self.s3.pyarrow_fs()
            self.root = posixpath.join(self.bucket, self.prefix) if self.prefix else self.bucket
        elif parsed.scheme in ("", "file"):
            self.fs = pafs.LocalFileSystem()
            self.root = os.path.abspath(parsed.path if parsed.scheme else self.uri)
        else:
            raise StorageError(f"run_dir {uri!r}: only local paths and s3:// are supported")

    # -- paths -------------------------------------------------------------------------
    def path(self, *parts: str) -> str:
        """Filesystem path (for self.fs) of a relative path in the run directory."""
        return posixpath.join(self.root, *parts) if parts else self.root

    def uri_of(self, *parts: str) -> str:
        """Full URI of a relative path, for messages and for other tools."""
        return posixpath.join(self.uri, *parts) if parts else self.uri

    def child(self, *parts: str) -> RunDir:
        """A RunDir rooted at a sub-folder (same filesystem, same settings)."""
        sub = RunDir.__new__(RunDir)
        sub.__dict__.update(self.__dict__)
        sub.uri, sub.root = self.uri_of(*parts), self.path(*parts)
        return sub

    def __repr__(self) -> str:
        return f"RunDir({self.uri!r})"

    # -- reads -------------------------------------------------------------------------
    def exists(self, rel: str) -> bool:
        return self.fs.get_file_info(self.path(rel)).type != pafs.FileType.NotFound

    def read_bytes(self, rel: str) -> bytes:
        with self.fs.open_input_stream(self.path(rel)) as f:
            return f.read()

    def read_text(self, rel: str) -> str:
        return self.read_bytes(rel).decode("utf-8")

    def read_json(self, rel: str) -> Any:
        return json.loads(self.read_text(rel))

    def list_files(self, rel: str, suffix: str = "") -> list[str]:
        """Relative paths of files under `rel` (recursive, sorted); [] if it does not exist."""
        selector = pafs.FileSelector(self.path(rel), allow_not_found=True, recursive=True)
        base = self.root.rstrip("/") + "/"
        names = [
            info.path[len(base) :] if info.path.startswith(base) else info.path
            for info in self.fs.get_file_info(selector)
            if info.type == pafs.FileType.File and info.path.endswith(suffix)
        ]
        return sorted(n for n in names if not posixpath.basename(n).startswith((".", "_tmp")))

    def list_dirs(self, rel: str) -> list[str]:
        """Names of the folders directly under `rel` (one listing, not recursive), sorted."""
        selector = pafs.FileSelector(self.path(rel), allow_not_found=True, recursive=False)
        infos = self.fs.get_file_info(selector)
        dirs = [i.path for i in infos if i.type == pafs.FileType.Directory]
        return sorted(posixpath.basename(d) for d in dirs)

    def count_rows(self, files: list[str]) -> int:
        """Rows in many Parquet files, from their footers (read concurrently; no data read)."""
        return self.parquet_dataset(files).count_rows(**READ_OPTIONS) if files else 0

    def read_parquet_file(self, rel: str, columns: list[str] | None = None) -> pa.Table:
        """One Parquet file."""
        return pq.read_table(self.path(rel), filesystem=self.fs, columns=columns)

    def read_table(self, rel: str, columns: list[str] | None = None) -> pa.Table | None:
        """Every Parquet file under the folder `rel` as one table; None when there is none."""
        files = self.list_files(rel, ".parquet")
        return self.read_files(files, columns) if files else None

    def parquet_dataset(self, files: list[str]) -> pads.Dataset:
        """A pyarrow dataset over relative Parquet paths, read through this run's filesystem.

        Its schema is the union of the files' schemas only when the first file's does not
        fit them all (inspecting every footer costs one request per file on S3).
        """
        paths = [self.path(f) for f in files]
        if self.is_s3:  # small objects are latency-bound: more requests in flight, not CPU
            pa.set_io_thread_count(max(pa.io_thread_count(), READ_IO_THREADS))
        return pads.dataset(paths, filesystem=self.fs, format="parquet")

    def read_files(self, files: list[str], columns: list[str] | None = None) -> pa.Table:
        """Read `columns` of many Parquet files concurrently (never one file after another)."""
        dataset = self.parquet_dataset(files)
        try:
            return dataset.to_table(columns=columns, **READ_OPTIONS)
        except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError):
            # files disagree with the first file's schema (e.g. an all-null column there)
            factory = pads.FileSystemDatasetFactory(
                self.fs, dataset.files, pads.ParquetFileFormat()
            )
            schema = factory.inspect(promote_options="default", fragments=None)
            dataset = pads.dataset(dataset.files, schema=schema, filesystem=self.fs)
            return dataset.to_table(columns=columns, **READ_OPTIONS)

    def iter_batches(
        self, files: list[str], columns: list[str] | None = None
    ) -> Iterator[tuple[int, pa.RecordBatch]]:
        """(index in `files`, batch) for every batch of many files, read concurrently.

        Files are read ahead concurrently; batches are yielded in file order (Arrow's ordered
        ScanBatches), so a pass over the same files sees the same sequence.
        """
        dataset = self.parquet_dataset(files)
        where = {path: i for i, path in enumerate(dataset.files)}
        for tagged in dataset.scanner(columns=columns, **READ_OPTIONS).scan_batches():
            yield where[tagged.fragment.path], tagged.record_batch

    # -- writes ------------------------------------------------------------------------
    def write_bytes(self, rel: str, data: bytes) -> None:
        """Write a file atomically: S3 puts are atomic; locally write then rename."""
        target = self.path(rel)
        if self.is_s3:
            with self.fs.open_output_stream(target) as f:
                f.write(data)
            return
        os.makedirs(posixpath.dirname(target), exist_ok=True)
        tmp = posixpath.join(posixpath.dirname(target), f"_tmp.{uuid.uuid4().hex}")
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, target)

    def write_text(self, rel: str, text: str) -> None:
        self.write_bytes(rel, text.encode("utf-8"))

    def write_json(self, rel: str, obj: Any) -> None:
        self.write_text(rel, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")

    def write_table(self, rel: str, table: pa.Table) -> None:
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="zstd")
        self.write_bytes(rel, buf.getvalue())

    def delete_dir(self, rel: str) -> None:
        if self.exists(rel):
            self.fs.delete_dir(self.path(rel))

    def delete_file(self, rel: str) -> None:
        if self.exists(rel):
            self.fs.delete_file(self.path(rel))

    def upload_dir(self, local_dir: str, rel: str) -> None:
        """Replace folder `rel` with a copy of a local folder (a model export, local or S3)."""
        self.delete_dir(rel)
        self.fs.create_dir(self.path(rel), recursive=True)
        pafs.copy_files(
            local_dir,
            self.path(rel),
            source_filesystem=pafs.LocalFileSystem(),
            destination_filesystem=self.fs,
        )

    # -- completion markers ------------------------------------------------------------
    def is_complete(self, rel: str) -> bool:
        return self.exists(posixpath.join(rel, SUCCESS_MARKER))

    def mark_complete(self, rel: str, info: dict[str, Any]) -> None:
        """Write the marker last: S3 has no atomic rename, so the marker is the commit."""
        self.write_json(posixpath.join(rel, SUCCESS_MARKER), info)

    def iter_jsonl(self, rel: str) -> Iterator[dict[str, Any]]:
        if not self.exists(rel):
            return
        for line in self.read_text(rel).splitlines():
            if line.strip():
                yield json.loads(line)

    def append_jsonl(self, rel: str, record: dict[str, Any]) -> None:
        """Append one line; read-modify-write because S3 objects cannot be appended to."""
        old = self.read_text(rel) if self.exists(rel) else ""
        self.write_text(rel, old + json.dumps(record, sort_keys=True, default=str) + "\n")

    # -- preflight ---------------------------------------------------------------------
    def preflight(self) -> None:
        """Write and delete a probe object, so a bad endpoint fails before any engine starts."""
        probe = f"_preflight.{uuid.uuid4().hex}"
        if not self.is_s3:
            try:
                self.write_text(probe, "ok")
                self.delete_file(probe)
            except OSError as exc:
                raise StorageError(f"cannot write to run directory {self.root}: {exc}") from exc
            return
        key = posixpath.join(self.prefix, probe) if self.prefix else probe
        where = f"s3://{self.bucket}/{self.prefix} at endpoint {self.s3.endpoint_url or 'AWS'}"
        try:
            client = self.s3.boto3_client()
            client.put_object(Bucket=self.bucket, Key=key, Body=b"ok")
            client.delete_object(Bucket=self.bucket, Key=key)
        except Exception as exc:  # botocore raises many unrelated types; all mean "cannot use"
            raise StorageError(
                f"cannot write to {where} (bucket {self.bucket!r}): {type(exc).__name__}: "
                f"{exc}. Check the bucket exists, AWS_ENDPOINT_URL / storage.s3_endpoint_url, "
                "and that credentials in the AWS chain may write there."
            ) from None
        logger.info("preflight ok: %s", where)
