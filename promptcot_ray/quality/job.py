"""`quality`: accepted problems (all rounds) -> exact dedup, near-dedup, decontamination.

One Ray Data read of `synthesis/*/accepted`; workers compute hashes, LSH bucket keys and
benchmark/seed n-gram hits in `map_batches`; buckets are grouped by key in Ray Data and only
their candidate pairs reach the driver, which keeps the smallest id of every duplicate group.
Writes `problems/` (kept) and `problems-removed/` (one reason per row) and a ledger line.
Precedence when several reasons apply: contaminated > seed copy > exact > near duplicate.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from promptcot_ray import catalog, layout, stage_marker
from promptcot_ray import records as R
from promptcot_ray.config import config_hash, config_to_yaml
from promptcot_ray.ledger import StageRecord, append_records
from promptcot_ray.quality.config import QualityConfig
from promptcot_ray.quality.decontam import SEEDS_SOURCE, NgramIndex, build_index
from promptcot_ray.quality.dedup import (
    Decision,
    near_pair_ids,
    partition_pairs,
    resolve_duplicates,
)
from promptcot_ray.quality.features import (
    ComputeFeatures,
    explode_keys,
    hits_only,
    signatures_of,
)
from promptcot_ray.quality.outputs import (
    KEPT_DIR,
    KEPT_SCHEMA,
    REMOVED_DIR,
    REMOVED_SCHEMA,
    kept_rows,
    removed_rows,
)
from promptcot_ray.quality.references import load_benchmark, load_seeds
from promptcot_ray.sinks import IdKeyedParquetSink
from promptcot_ray.storage import RunDir

logger = logging.getLogger(__name__)

JOB = "quality"
_BATCH = {"batch_format": "pyarrow", "zero_copy_batch": True}
_MAX_PARTITIONS = 32


class NoAcceptedProblems(RuntimeError):
    """The run has no accepted problems to check (synthesize has not finished a round)."""


@dataclass
class QualitySummary:
    run_dir: str
    rows_in: int
    kept: int
    rejected: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    outputs: dict[str, str] = field(default_factory=dict)


def accepted_files(run: RunDir, only: tuple[int, ...] | None = None) -> list[str]:
    """Every accepted Parquet file of every round (or of the rounds `only` names)."""
    return catalog.dataset_files(run, catalog.ACCEPTED, only)


def _collect(ds) -> pa.Table | None:
    """Bring a small dataset (pairs, hits, signatures) to the driver."""
    tables = [t for t in ds.iter_batches(batch_size=None, batch_format="pyarrow") if t.num_rows]
    return pa.concat_tables(tables) if tables else None


def _build_index(cfg: QualityConfig, run: RunDir) -> NgramIndex | None:
    refs = [r for src in cfg.benchmarks for r in load_benchmark(src, cfg.storage)]
    if cfg.check_seeds:
        refs += load_seeds(run)
    index = build_index(refs, cfg.ngram) if refs else None
    logger.info("decontamination index: %d %d-grams", len(index) if index else 0, cfg.ngram)
    return index


def contamination_decisions(hits: pa.Table | None) -> dict[str, Decision]:
    """A benchmark hit is `contaminated`, a seed hit `seed_copy` (benchmarks win: index order)."""
    decisions: dict[str, Decision] = {}
    for row in hits.to_pylist() if hits is not None else []:
        reason = R.REASON_SEED_COPY if row["hit_source"] == SEEDS_SOURCE else R.REASON_CONTAMINATED
        decisions[row[R.ID]] = Decision(
            reason, row["hit_item"], row["hit_source"], ngram=row["hit_ngram"]
        )
    return decisions


def candidate_pairs(features) -> list[tuple[str, str, bool]]:
    """Pairs of clean rows sharing a bucket key: one shuffle by `key % P`, then a sort per
    partition finds the shared keys (see dedup.partition_pairs)."""
    # Ray's default of 200 shuffle partitions means 200 tasks per step even on 2 cores.
    parts = max(1, min(_MAX_PARTITIONS, features.num_blocks()))
    buckets = features.map_batches(explode_keys, fn_kwargs={"partitions": parts}, **_BATCH)
    grouped = buckets.groupby("part", num_partitions=parts)
    pairs = _collect(grouped.map_groups(partition_pairs, **_BATCH))
    if pairs is None:
        return []
    return list(zip(*(pairs[c].to_pylist() for c in ("a", "b", "same_text")), strict=True))


def find_removals(cfg: QualityConfig, rows, index: NgramIndex | None) -> dict[str, Decision]:
    """Removal decision per removed id, over the dataset `rows` (columns id, problem)."""
    compute = ComputeFeatures(cfg.num_perm, cfg.shingle, cfg.minhash_threshold, index)
    features = rows.map_batches(compute, batch_size=cfg.block_rows, **_BATCH).materialize()
    decisions = contamination_decisions(_collect(features.map_batches(hits_only, **_BATCH)))
    pairs = candidate_pairs(features)
    needed = near_pair_ids(pairs)
    signatures: dict[str, np.ndarray] = {}
    if needed:  # the few candidate rows' signatures, kept from the features step
        wanted = pa.array(sorted(needed), pa.string())
        table = _collect(features.map_batches(signatures_of, fn_kwargs={"ids": wanted}, **_BATCH))
        ids, sigs = table[R.ID].to_pylist(), table["signature"].to_pylist()
        signatures = {i: np.frombuffer(s, dtype=np.uint32) for i, s in zip(ids, sigs, strict=True)}
    duplicates = resolve_duplicates(pairs, signatures, cfg.minhash_threshold)
    logger.info("%d candidate pairs, %d duplicates removed", len(pairs), len(duplicates))
    return {**duplicates, **decisions}  # contamination wins over duplication


def write_outputs(run: RunDir, accepted, decisions: dict[str, Decision]) -> None:
    """Rewrite problems/ and problems-removed/ from scratch, markers last."""
    removed = pa.array(sorted(decisions), pa.string())
    for rel in (KEPT_DIR, REMOVED_DIR):
        run.delete_dir(rel)
    kept = accepted.map_batches(kept_rows, fn_kwargs={"removed": removed}, **_BATCH)
    kept.write_datasink(IdKeyedParquetSink(run, KEPT_DIR, KEPT_SCHEMA, R.ID))
    gone = accepted.map_batches(
        removed_rows, fn_kwargs={"decisions": decisions, "removed": removed}, **_BATCH
    )
    gone.write_datasink(IdKeyedParquetSink(run, REMOVED_DIR, REMOVED_SCHEMA, R.ID))


def run(cfg: QualityConfig) -> QualitySummary:
    """Run the quality gates over every accepted problem of the run; Ray must be connected."""
    import ray.data

    started = time.time()
    run_dir = RunDir(cfg.storage.run_dir, cfg.storage)
    run_dir.preflight()
    files = accepted_files(run_dir, cfg.rounds)
    if not files:
        which = f" of rounds {list(cfg.rounds)}" if cfg.rounds is not None else ""
        raise NoAcceptedProblems(
            f"no accepted problems{which} under {run_dir.uri_of(layout.ACCEPTED_GLOB)}; "
            "run synthesize first"
        )
    for rel in (KEPT_DIR, REMOVED_DIR):  # both are rewritten below
        stage_marker.begin(run_dir, rel)
    run_dir.write_text(layout.config_file(layout.QUALITY), config_to_yaml(cfg))
    index = _build_index(cfg, run_dir)
    accepted = ray.data.read_parquet([run_dir.path(f) for f in files], filesystem=run_dir.fs)
    decisions = find_removals(cfg, accepted.select_columns([R.ID, "problem"]), index)
    write_outputs(run_dir, accepted, decisions)
    # Counters come from the written rows, so the ledger shows a row that went missing.
    kept_table = run_dir.read_table(KEPT_DIR, columns=[R.ID])
    removed_table = run_dir.read_table(REMOVED_DIR, columns=[R.REASON])
    kept = kept_table.num_rows if kept_table is not None else 0
    reasons = Counter(removed_table[R.REASON].to_pylist() if removed_table is not None else [])
    rows_in = run_dir.count_rows(files)  # from the footers, read concurrently
    seconds = time.time() - started
    chash = config_hash(cfg)
    extra = {"config": chash, "benchmarks": [b.name for b in cfg.benchmarks]}
    record = StageRecord(
        job=JOB,
        stage=R.STAGE_QUALITY,
        rows_in=rows_in,
        rows_out=kept,
        rejected=dict(reasons),
        seconds=seconds,
    )
    record.extra = extra
    append_records(run_dir, [record])
    for rel, n in ((REMOVED_DIR, sum(reasons.values())), (KEPT_DIR, kept)):  # problems/ last
        stage_marker.commit(run_dir, rel, chash, {"rows": n}, benchmarks=extra["benchmarks"])
    if not record.reconciles():
        logger.warning("quality ledger does not reconcile: %s", record)
    outputs = {"problems": run_dir.uri_of(KEPT_DIR), "removed": run_dir.uri_of(REMOVED_DIR)}
    return QualitySummary(run_dir.uri, rows_in, kept, reasons, seconds, outputs)


EXPECTED_ERRORS = (NoAcceptedProblems,)
