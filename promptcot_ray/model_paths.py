"""Name models by where they live: a path, a hub name, s3://, or `run:models/<name>/final`.

`run:` makes a model an earlier train job exported usable by any job of the same run
without spelling out the run directory again; it resolves to a local path or an s3:// URI
(ray.data.llm downloads s3:// model sources on each node itself). The resolved location is
only what the engine loads (`LLMConfig.source`); rows keep the name as written.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from promptcot_ray import layout
from promptcot_ray.config import LLMConfig, StorageConfig
from promptcot_ray.records import make_id
from promptcot_ray.storage import SUCCESS_MARKER, RunDir

RUN_PREFIX = "run:"
FINAL_MODEL = layout.FINAL_MODEL  # models/<name>/final: the Hugging Face export


def export_dir(name: str) -> str:
    """Run-relative folder of a trained model's Hugging Face export."""
    return layout.model_file(name, FINAL_MODEL)


def resolve_model(model: str, run: RunDir) -> str:
    """`run:REL` -> the run directory's REL (path or URI); a local folder -> its absolute
    path (Ray workers, Ray Train's above all, do not run in the driver's directory); anything
    else (hub names, s3://) unchanged."""
    if not model.startswith(RUN_PREFIX):
        local = os.path.expanduser(model)
        is_uri = "://" in model
        return os.path.abspath(local) if not is_uri and os.path.isdir(local) else model
    rel = model[len(RUN_PREFIX) :].strip("/")
    if not run.exists(rel):
        from promptcot_ray.config import ConfigError

        raise ConfigError(
            f"model {model!r}: nothing at {run.uri_of(rel)}; train it first "
            f"(promptcot-ray train) or give a path"
        )
    return run.uri_of(rel)


def export_fingerprint(model: str, run: RunDir) -> str | None:
    """A `run:` model's export marker as a short hash: it changes when the model is trained
    again, and not when the run directory is copied elsewhere."""
    marker = posixpath.join(model[len(RUN_PREFIX) :].strip("/"), SUCCESS_MARKER)
    if not model.startswith(RUN_PREFIX) or not run.exists(marker):
        return None
    return make_id("export", run.read_text(marker))


def with_run_models(cfg: Any, run: RunDir) -> Any:
    """A copy of a job config whose every LLMConfig knows where its model is (`source`).

    `model` stays as written (`run:models/x/final`): ids, lineage and config hashes are made
    from it, so a run directory copied elsewhere keeps its ids; only the engine loads
    `source`, the resolved path or URI."""
    if isinstance(cfg, LLMConfig):
        resolved = resolve_model(cfg.model, run)
        env = download_env(resolved, run.storage)
        if resolved == cfg.source and env == cfg.download_env:
            return cfg
        located = cfg.model_copy()
        located._source = resolved
        located._export = export_fingerprint(cfg.model, run)
        located._download_env = env
        return located
    if isinstance(cfg, BaseModel):
        updates = {}
        for name in type(cfg).model_fields:
            value = getattr(cfg, name)
            new = with_run_models(value, run)
            if new is not value:
                updates[name] = new
        return cfg.model_copy(update=updates) if updates else cfg
    if isinstance(cfg, tuple):
        items = tuple(with_run_models(v, run) for v in cfg)
        return items if any(a is not b for a, b in zip(items, cfg, strict=True)) else cfg
    return cfg


def download_env(source: str, storage: StorageConfig) -> dict[str, str]:
    """For an s3:// model: the endpoint and region the storage config names, as the
    variables boto3 reads. ray.data.llm downloads the model with boto3 on the driver
    (tokenizer, config) and in each engine actor and reads no config of ours, so settings
    given only in YAML would be lost there; what the config leaves unset stays each node's
    own (its AWS environment, IRSA). Empty for other models."""
    env: dict[str, str] = {}
    if source.startswith(("s3://", "s3a://")):
        if storage.s3_endpoint_url:
            env["AWS_ENDPOINT_URL_S3"] = storage.s3_endpoint_url
        if storage.s3_region:
            env["AWS_REGION"] = env["AWS_DEFAULT_REGION"] = storage.s3_region
    return env


def local_model_dir(uri: str, storage: StorageConfig) -> str:
    """A local folder holding the model at `uri` (downloaded once for s3://), or a hub name."""
    if not uri.startswith(("s3://", "s3a://")):
        return uri
    import shutil
    import tempfile

    import pyarrow.fs as pafs

    src = RunDir(uri, storage)
    # an export's completion marker changes when it is retrained: part of the cache key
    version = src.read_text("_SUCCESS.json") if src.exists("_SUCCESS.json") else ""
    cache = Path(os.environ.get("PROMPTCOT_MODEL_CACHE", "~/.cache/promptcot-ray/models"))
    cache = cache.expanduser()
    target = cache / hashlib.sha256(f"{uri}\n{version}".encode()).hexdigest()[:16]
    if target.exists():
        return str(target)
    cache.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=".download-", dir=cache))
    pafs.copy_files(src.path(), str(partial), source_filesystem=src.fs)
    try:  # several processes may download at once: the first rename wins, others discard
        partial.rename(target)
    except OSError:
        shutil.rmtree(partial, ignore_errors=True)
    return str(target)
