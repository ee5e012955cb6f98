"""Copy a job's models once into the run's bucket, and a config that loads them from there.

At the 400k layout every judge node would otherwise download a 70B model from the hub at
each start. Staging copies each configured model (a local folder, or a hub name fetched
once here) to `<to>/<name>-<fingerprint>/` with pyarrow's multi-threaded copy, writes
`_STAGED.json` last (so a copy cut short is never taken as staged), and rewrites the
config's model fields to those URIs; ray.data.llm then downloads s3:// models on each node
itself, and the train job through `model_paths.local_model_dir`.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs
from pydantic import BaseModel

from promptcot_ray.config import ConfigError, LLMConfig, StorageConfig
from promptcot_ray.model_paths import RUN_PREFIX
from promptcot_ray.storage import RunDir

STAGED_MARKER = "_STAGED.json"
SAMPLE_BYTES = 1 << 20  # of each large file's start and end, for the fingerprint
MODEL_FIELDS = ("base_model",)  # model fields outside an LLMConfig (train's)


@dataclass(frozen=True)
class StagedModel:
    """One model of the config: where it was, where it is now, what copying it took."""

    keys: tuple[str, ...]  # the config keys naming it (one model may serve several)
    model: str
    uri: str | None  # None: left as it is (already remote, or a `run:` model)
    files: int = 0
    bytes: int = 0
    copied: bool = False
    note: str = ""


def model_fields(cfg: Any, prefix: str = "") -> list[tuple[str, str]]:
    """(dotted key, model) for every model a job config loads: each LLMConfig's `model`
    and train's `base_model`."""
    if isinstance(cfg, LLMConfig):
        return [(f"{prefix}model", cfg.model)]
    found: list[tuple[str, str]] = []
    if isinstance(cfg, BaseModel):
        for name in type(cfg).model_fields:
            value = getattr(cfg, name)
            if name in MODEL_FIELDS and isinstance(value, str):
                found.append((f"{prefix}{name}", value))
            else:
                found += model_fields(value, f"{prefix}{name}.")
    elif isinstance(cfg, tuple | list):
        for i, value in enumerate(cfg):
            found += model_fields(value, f"{prefix}{i}.")
    return found


def _local_folder(model: str) -> Path | None:
    """The model's local folder: as written, or a hub name fetched into the local cache."""
    if model.startswith(RUN_PREFIX) or "://" in model:
        return None
    local = Path(os.path.expanduser(model))
    if local.is_dir():
        return local.resolve()
    from huggingface_hub import snapshot_download

    try:
        return Path(snapshot_download(model))
    except Exception as exc:  # offline, a typo, a gated repo: the hub says which
        raise ConfigError(
            f"model {model!r}: not a local folder, and the Hugging Face hub did not give it "
            f"({type(exc).__name__}: {str(exc)[:200]}); give a local folder or stage it "
            "where the hub is reachable"
        ) from None


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts)


def fingerprint(folder: Path, files: list[tuple[Path, int]]) -> str:
    """A short hash of a model folder's (file, size) list: every file's name and size, small
    files' bytes, and the first and last MiB of large ones. Hashing every byte of a 140 GB
    checkpoint would take minutes before the copy starts; two checkpoints of one
    architecture differ in their first tensors' bytes, so the samples tell them apart."""
    digest = hashlib.sha256()
    for path, size in files:
        digest.update(f"{path.relative_to(folder).as_posix()}\0{size}\0".encode())
        with path.open("rb") as f:
            if size <= 2 * SAMPLE_BYTES:
                digest.update(f.read())
            else:
                digest.update(f.read(SAMPLE_BYTES))
                f.seek(size - SAMPLE_BYTES)
                digest.update(f.read(SAMPLE_BYTES))
    return digest.hexdigest()[:12]


def _slug(model: str, folder: Path) -> str:
    name = folder.name if os.path.isdir(os.path.expanduser(model)) else model
    return "".join(c if c.isalnum() or c in "-_." else "--" for c in name).strip("-.") or "model"


def stage_model(model: str, keys: tuple[str, ...], dest: RunDir) -> StagedModel:
    """Copy one model under `dest` unless an identical copy is already staged there."""
    folder = _local_folder(model)
    if folder is None:
        note = "a run: model (in the run already)" if model.startswith(RUN_PREFIX) else ""
        return StagedModel(keys, model, None, note=note or "already remote: left as written")
    if not (folder / "config.json").exists():
        raise ConfigError(f"{keys[0]}: {folder} has no config.json (not a Hugging Face model)")
    files = [(p, p.stat().st_size) for p in _files(folder)]  # one walk, one stat per file
    rel = f"{_slug(model, folder)}-{fingerprint(folder, files)}"
    size = sum(n for _, n in files)
    staged = dest.child(rel)
    if staged.exists(STAGED_MARKER):
        return StagedModel(keys, model, staged.uri, len(files), size, note="already staged")
    pafs.copy_files(
        str(folder),
        staged.path(),
        source_filesystem=pafs.LocalFileSystem(),
        destination_filesystem=dest.fs,
        use_threads=True,  # many files, and large ones in parts, in flight at once
    )
    marker = {"source": model, "files": len(files), "bytes": size, "staged_at": time.time()}
    staged.write_json(STAGED_MARKER, marker)  # last: a copy cut short is copied again
    return StagedModel(keys, model, staged.uri, len(files), size, copied=True)


def _replace(data: Any, dotted: str, value: str) -> None:
    *parents, last = dotted.split(".")
    node = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    node[int(last) if isinstance(node, list) else last] = value


def stage_fields(
    fields: list[tuple[str, str]], to: str, storage: StorageConfig
) -> list[StagedModel]:
    """Stage each distinct model of these (key, model) fields under `to`, once."""
    if not fields:
        raise ConfigError("this config names no model to stage")
    dest = RunDir(to, storage)
    dest.preflight()  # a wrong bucket or endpoint fails here, before any copy
    by_model: dict[str, list[str]] = {}
    for key, model in fields:
        by_model.setdefault(model, []).append(key)
    return [stage_model(m, tuple(keys), dest) for m, keys in by_model.items()]


def stage_models(cfg: BaseModel, to: str, storage: StorageConfig) -> tuple[dict, list]:
    """Stage every model `cfg` loads under `to`; (the config as a dict with its model
    fields rewritten to the staged URIs, one StagedModel per distinct model)."""
    results = stage_fields(model_fields(cfg), to, storage)
    data = json.loads(cfg.model_dump_json())
    for result in results:
        for key in result.keys if result.uri else ():
            _replace(data, key, result.uri)
    return data, results
