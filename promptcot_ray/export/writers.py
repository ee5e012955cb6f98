"""Writing an export: sharded Parquet or JSONL files, the card, a manifest; Hub upload.

The destination is a local folder or s3:// prefix, written through the same RunDir folder
object as every run, so S3 endpoints and credentials behave exactly as for jobs.
"""

from __future__ import annotations

import io
import json
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from promptcot_ray.storage import RunDir

DATA_DIR = "data"
MANIFEST = "export.json"
CARD = "README.md"


class HubApi(Protocol):
    """The two huggingface_hub.HfApi calls an upload needs (tests pass a recording fake)."""

    def create_repo(self, repo_id: str, **kwargs: Any) -> Any: ...

    def upload_folder(self, *, folder_path: str, repo_id: str, **kwargs: Any) -> Any: ...


def shard_names(rows: int, shard_rows: int, ext: str) -> list[tuple[str, int, int]]:
    """(file, first row, row count) per shard, named as the Hub names split shards."""
    count = max(1, -(-rows // shard_rows))
    return [
        (
            f"{DATA_DIR}/train-{i:05d}-of-{count:05d}.{ext}",
            i * shard_rows,
            min(shard_rows, rows - i * shard_rows),
        )
        for i in range(count)
    ]


def _jsonl(table: pa.Table) -> bytes:
    """One JSON object per line; pandas writes it in C (nested lists/structs become JSON)."""
    buf = io.StringIO()
    table.to_pandas(types_mapper=None).to_json(buf, orient="records", lines=True, force_ascii=False)
    return buf.getvalue().encode("utf-8")


def write_shards(dest: RunDir, table: pa.Table, ext: str, shard_rows: int) -> list[str]:
    """Write `table` as data/train-XXXXX-of-YYYYY.<ext> files; returns their names."""
    dest.delete_dir(DATA_DIR)  # a re-export replaces the old shards, never mixes with them
    names = []
    for name, start, length in shard_names(table.num_rows, shard_rows, ext):
        part = table.slice(start, length)
        if ext == "parquet":
            buf = io.BytesIO()
            pq.write_table(part, buf, compression="zstd")
            dest.write_bytes(name, buf.getvalue())
        else:
            dest.write_bytes(name, _jsonl(part))
        names.append(name)
    return names


def write_manifest(dest: RunDir, manifest: dict[str, Any]) -> None:
    dest.write_text(MANIFEST, json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def push_to_hub(
    dest: RunDir, repo_id: str, *, private: bool, api: HubApi | None = None, message: str
) -> str:
    """Upload the export folder to a Hugging Face dataset repo; returns the repo URL."""
    if dest.is_s3:
        raise ValueError(
            "--push-to-hub uploads a local folder: export with --to a local path, "
            "then push (the Hub client cannot read s3:// folders)"
        )
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()  # token from HF_TOKEN or `hf auth login`, never from our config
    api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    api.upload_folder(
        folder_path=dest.root, repo_id=repo_id, repo_type="dataset", commit_message=message
    )
    return f"https://huggingface.co/datasets/{repo_id}"
