"""Find the concept pool a synthesize run draws from, and keep it in the run directory.

The pool is either the one the concepts job wrote (`pool.source: run`) or built here from a
concept-list file (the project's own small file for the local default, or the user's). A
built pool is written to the run directory so the run is self-contained and its version is
recorded; a run directory that already holds a different pool is an error, not a silent swap.
"""

from __future__ import annotations

import logging
import posixpath

from promptcot_ray.concepts.pool import (
    ConceptPool,
    build_pool,
    default_concept_lists_path,
    hashed_embedding,
    parse_concept_lists,
)
from promptcot_ray.concepts.store import (
    POOL_DIR,
    read_pool,
    stored_pool_source,
    stored_pool_version,
    write_pool,
)
from promptcot_ray.config import ConfigError, StorageConfig
from promptcot_ray.records import make_id
from promptcot_ray.storage import RunDir
from promptcot_ray.synthesis.config import PoolConfig

logger = logging.getLogger(__name__)


def read_concept_lists(uri: str, storage: StorageConfig) -> list[list[str]]:
    """Concept lists from a JSONL file (local or s3://) with a `concepts` list per line."""
    parent = RunDir(posixpath.dirname(uri) or ".", storage)
    name = posixpath.basename(uri)
    if not parent.exists(name):
        raise ConfigError(f"pool.source: concept-list file not found: {uri}")
    try:
        return parse_concept_lists(parent.read_text(name).splitlines(), uri)
    except ValueError as exc:
        raise ConfigError(f"pool.source: {exc}") from None


def _embedder(cfg: PoolConfig):  # -> Callable[[list[str]], np.ndarray]
    if cfg.embedding == "hashed":
        return hashed_embedding
    from promptcot_ray.llm.embedding import sentence_transformer_embedder

    return sentence_transformer_embedder(cfg.embedding_model)


def resolve_pool(cfg: PoolConfig, storage: StorageConfig, run: RunDir) -> ConceptPool:
    """The pool for this run: read it, or build it from a list file and store it."""
    if cfg.source == "run":
        if not run.is_complete(POOL_DIR):
            raise ConfigError(
                f"pool.source=run but {run.uri_of(POOL_DIR)} has no complete pool: run the "
                "concepts job first, or set pool.source=builtin (or a concept-list file)"
            )
        return read_pool(run)
    uri = str(default_concept_lists_path()) if cfg.source == "builtin" else cfg.source
    lists = read_concept_lists(uri, storage)
    # Embeddings are floats: rebuilding on another CPU could change the version in the last
    # bit. The same lists + embedding settings reuse the stored pool instead.
    source = make_id("pool-source", lists, cfg.embedding, cfg.embedding_model)
    if stored_pool_source(run) == source:
        return read_pool(run)
    stored = stored_pool_version(run)
    if stored is not None:
        raise ConfigError(
            f"{run.uri_of(POOL_DIR)} holds pool version {stored}, built from other concepts or "
            f"embedding settings than pool.source={cfg.source!r}: use a new storage.run_dir, "
            "or pool.source=run to keep the stored pool"
        )
    pool = build_pool(lists, _embedder(cfg))
    write_pool(run, pool, source)
    logger.info("built pool %s: %d concepts from %s", pool.version, len(pool.concepts), uri)
    return pool
