"""`concepts`: seed problems -> k foundational concepts each (LLM) -> the concept pool.

Seeds are cleaned and deduplicated (every dropped row keeps a reason), concepts are
extracted through the engine layer into id-keyed files (resumable), and the pool the
synthesize sampler draws from is built from the parsed lists and written, versioned, to
`concepts/pool/`. Ray must already be connected (the CLI does that).
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from promptcot_ray import layout, stage_marker
from promptcot_ray import records as R
from promptcot_ray.concepts.config import ConceptsConfig, PoolBuildConfig
from promptcot_ray.concepts.extract import (
    EXTRACTED_SCHEMA,
    BuildConceptRequest,
    CollectConcepts,
    SettleConcepts,
)
from promptcot_ray.concepts.seeds import prepare_seeds, read_seed_rows
from promptcot_ray.concepts.store import POOL_DIR, write_pool
from promptcot_ray.config import ConfigError, config_hash
from promptcot_ray.error_budget import TooManyErrors, check_error_fraction
from promptcot_ray.ledger import StageRecord, append_records
from promptcot_ray.llm_stage import run_llm_stage
from promptcot_ray.model_paths import with_run_models
from promptcot_ray.resume import finished_rows, without_written
from promptcot_ray.sinks import conform
from promptcot_ray.storage import RunDir

logger = logging.getLogger(__name__)

JOB = "concepts"
SEEDS_DIR = layout.SEEDS
EXTRACTED_DIR = layout.EXTRACTED


class NoConceptsError(RuntimeError):
    """No seed yielded a parseable concept list, so there is no pool to build."""


@dataclass
class ConceptsSummary:
    run_dir: str
    seeds_in: int
    seeds_kept: int
    extracted_ok: int
    pool_concepts: int
    pool_version: str | None
    rejected: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    resumed_rows: int = 0


def ensure_seeds(run: RunDir, cfg: ConceptsConfig) -> pa.Table:
    """Read and prepare seeds once; later runs read the stored table back."""
    key = config_hash(cfg.seeds)
    if run.is_complete(SEEDS_DIR):
        if run.read_json(f"{SEEDS_DIR}/_SUCCESS.json").get("config") != key:
            raise ConfigError(
                f"{run.uri_of(SEEDS_DIR)} was made from other seeds settings; use a new "
                "storage.run_dir, or restore the original seeds section"
            )
        return run.read_table(SEEDS_DIR)
    table = prepare_seeds(read_seed_rows(cfg.seeds, cfg.storage), cfg.seeds)
    run.write_table(f"{SEEDS_DIR}/part-00000.parquet", table)
    run.mark_complete(SEEDS_DIR, {"rows": table.num_rows, "config": key})
    return table


def read_extracted(run: RunDir) -> pa.Table:
    """All extraction rows, one per seed (duplicates from retried writes dropped)."""
    table = run.read_table(EXTRACTED_DIR)
    if table is None:
        return EXTRACTED_SCHEMA.empty_table()
    return conform(finished_rows(table, "seed_id"), EXTRACTED_SCHEMA)


def build_concept_pool(lists: list[list[str]], cfg: PoolBuildConfig):  # -> ConceptPool
    """Build (and optionally merge near-identical concepts of) the pool from concept lists."""
    from promptcot_ray.concepts.pool import build_pool, hashed_embedding

    if cfg.embedding == "hashed":
        embed = hashed_embedding
    else:
        from promptcot_ray.llm.embedding import sentence_transformer_embedder

        embed = sentence_transformer_embedder(cfg.embedding_model)
    pool = build_pool(lists, embed)
    if cfg.merge_threshold is not None:
        from promptcot_ray.concepts.merge import apply_merge, merge_map

        pool = build_pool(apply_merge(lists, merge_map(pool, cfg.merge_threshold)), embed)
    return pool


def _ledger(cfg: ConceptsConfig, seeds: pa.Table, extracted: pa.Table, pool, secs: float):
    """Ledger lines; inputs are counted from the input side so a lost row shows up."""
    from promptcot_ray.prompts import concepts as concept_prompt

    seed_rejects = Counter(r for r in seeds[R.REASON].to_pylist() if r)
    kept = seeds.num_rows - sum(seed_rejects.values())
    rows = extracted.to_pylist()
    extract_rejects = Counter(r[R.REASON] for r in rows if r[R.STATUS] != R.STATUS_OK)
    ok = len(rows) - sum(extract_rejects.values())
    pool_extra = {"concepts": len(pool.concepts), "version": pool.version} if pool else {}
    return [
        StageRecord(
            job=JOB,
            stage=R.STAGE_SEEDS,
            rows_in=seeds.num_rows,
            rows_out=kept,
            rejected=dict(seed_rejects),
        ),
        StageRecord(
            job=JOB,
            stage=R.STAGE_EXTRACT,
            rows_in=kept,
            rows_out=ok,
            rejected=dict(extract_rejects),
            tokens_in=sum(r["tokens_in"] for r in rows),
            tokens_out=sum(r["tokens_out"] for r in rows),
            seconds=secs,
            model=cfg.extractor.model,
            prompt_version=concept_prompt.VERSION,
        ),
        StageRecord(
            job=JOB, stage=R.STAGE_POOL, rows_in=ok, rows_out=ok, rejected={}, extra=pool_extra
        ),
    ]


def run(cfg: ConceptsConfig) -> ConceptsSummary:
    """Run (or resume) concept extraction and pool building; Ray must be connected."""
    started = time.time()
    run_dir = RunDir(cfg.storage.run_dir, cfg.storage)
    run_dir.preflight()
    stage_marker.begin(run_dir, POOL_DIR)  # the pool is rebuilt below
    cfg = with_run_models(cfg, run_dir)  # `run:models/<name>/final` -> its location
    from promptcot_ray.config import config_to_yaml

    run_dir.write_text(layout.config_file(layout.CONCEPTS), config_to_yaml(cfg))
    seeds = ensure_seeds(run_dir, cfg)
    kept = seeds.filter(pc.equal(seeds[R.STATUS], R.STATUS_OK))
    todo, done = without_written(
        kept.rename_columns(["seed_id" if c == R.ID else c for c in kept.column_names]),
        "seed_id",
        run_dir,
        EXTRACTED_DIR,
        "seed_id",
    )
    logger.info(
        "%d seeds kept of %d; %d already extracted, %d to go",
        kept.num_rows,
        seeds.num_rows,
        done,
        todo.num_rows,
    )
    if todo.num_rows:
        steps = (
            BuildConceptRequest(cfg.extractor, cfg.k),
            CollectConcepts(cfg.k, cfg.min_concepts, cfg.max_concept_chars),
            SettleConcepts(),
        )
        run_llm_stage(
            todo.select(["seed_id", "problem", "level"]),
            cfg.extractor,
            steps,
            run_dir,
            EXTRACTED_DIR,
            EXTRACTED_SCHEMA,
            "seed_id",
            cfg.checkpoint_rows,
        )
    extracted = read_extracted(run_dir)
    ok = extracted.filter(pc.equal(extracted[R.STATUS], R.STATUS_OK))
    pool = build_concept_pool(ok["concepts"].to_pylist(), cfg.pool) if ok.num_rows else None
    seconds = time.time() - started
    append_records(run_dir, _ledger(cfg, seeds, extracted, pool, seconds))
    check_error_fraction(extracted, cfg.max_error_fraction, "extraction")
    summary = ConceptsSummary(
        run_dir.uri,
        seeds.num_rows,
        kept.num_rows,
        ok.num_rows,
        len(pool.concepts) if pool else 0,
        pool.version if pool else None,
        Counter(r for r in seeds[R.REASON].to_pylist() if r)
        + Counter(r[R.REASON] for r in extracted.to_pylist() if r[R.STATUS] != R.STATUS_OK),
        seconds,
        done,
    )
    if pool is None:
        raise NoConceptsError(
            f"none of {extracted.num_rows} extraction replies parsed into at least "
            f"{cfg.min_concepts} concepts; see {run_dir.uri_of(EXTRACTED_DIR)} (reason column)"
        )
    write_pool(run_dir, pool)
    # write_pool's marker names the pool; the stage's commit adds the config hash, last
    pool_info = stage_marker.read(run_dir, POOL_DIR) or {}
    counts = {"seeds": seeds.num_rows, "extracted_ok": ok.num_rows, "concepts": len(pool.concepts)}
    stage_marker.commit(run_dir, POOL_DIR, config_hash(cfg), counts, **pool_info)
    logger.info(
        "pool %s: %d concepts -> %s",
        pool.version,
        len(pool.concepts),
        run_dir.uri_of(POOL_DIR),
    )
    return summary


EXPECTED_ERRORS = (NoConceptsError, TooManyErrors)
