"""Seed problems: read from JSONL, Parquet or a Hugging Face dataset; clean; dedupe.

Every input row ends up either kept (with a content-derived `seed_id`) or rejected with a
reason: no problem text, a malformed line, or a duplicate of an earlier seed's normalised
text. Nothing is dropped silently.
"""

from __future__ import annotations

import posixpath
import re
import unicodedata
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from promptcot_ray import records as R
from promptcot_ray.concepts.config import SeedSource
from promptcot_ray.config import ConfigError, StorageConfig
from promptcot_ray.levels import match_level
from promptcot_ray.sources import jsonl_rows
from promptcot_ray.storage import RunDir
from promptcot_ray.table_schemas import SEEDS_SCHEMA

_SPACE_RE = re.compile(r"\s+")


def normalize_problem(text: str) -> str:
    """The dedupe key of a problem: NFKC, casefolded, whitespace collapsed."""
    return _SPACE_RE.sub(" ", unicodedata.normalize("NFKC", text)).strip().casefold()


def seed_id(problem: str) -> str:
    return R.make_id("seed", normalize_problem(problem))


def read_seed_rows(src: SeedSource, storage: StorageConfig) -> list[dict[str, Any] | str]:
    """Raw seed rows from the configured source (malformed lines come back as strings); an
    empty source, or one where no row has the problem column, is a ConfigError naming it."""
    rows = _raw_seed_rows(src, storage)
    where = src.path or f"Hugging Face dataset {src.hf_dataset}"
    if not rows:
        raise ConfigError(f"seeds: {where} is empty (no rows)")
    objects = [r for r in rows if isinstance(r, dict)]
    if objects and not any(src.problem_column in r for r in objects):
        found = list(dict.fromkeys(k for r in objects[:200] for k in r))
        raise ConfigError(
            f"seeds: {where} has no column {src.problem_column!r}; columns found: {found} "
            "(set seeds.problem_column to one of them)"
        )
    return rows


def _raw_seed_rows(src: SeedSource, storage: StorageConfig) -> list[dict[str, Any] | str]:
    if src.hf_dataset:
        import datasets

        return list(datasets.load_dataset(src.hf_dataset, split=src.hf_split))
    path = src.path or ""
    folder = RunDir(posixpath.dirname(path) or ".", storage)
    name = posixpath.basename(path)
    if not folder.exists(name):
        raise ConfigError(f"seeds.path: not found: {path}")
    if name.endswith((".jsonl", ".json")):
        return jsonl_rows(folder, name)  # bad lines become counted rejections
    if name.endswith(".parquet"):
        return pq.read_table(folder.path(name), filesystem=folder.fs).to_pylist()
    table = folder.read_table(name)  # a folder of Parquet files
    if table is None:
        raise ConfigError(f"seeds.path: {path} is not .jsonl, .parquet or a Parquet folder")
    return table.to_pylist()


def prepare_seeds(rows: list[dict[str, Any] | str], src: SeedSource) -> pa.Table:
    """One row per input row: kept seeds (status ok) and rejections with reasons."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    created = R.now_iso()
    for index, row in enumerate(rows[: src.limit] if src.limit else rows):
        base = {
            "source_index": index,
            "duplicate_of": None,
            R.ERROR: None,
            R.STAGE: R.STAGE_SEEDS,
            R.CREATED_AT: created,
            "level": None,
        }
        if isinstance(row, str):
            out.append(
                {
                    **base,
                    R.ID: R.make_id("seed-row", index, row),
                    "problem": None,
                    R.STATUS: R.STATUS_FILTERED,
                    R.REASON: R.REASON_SEED_MALFORMED,
                    R.ERROR: row[: R.MAX_ERROR_CHARS],
                }
            )
            continue
        problem = row.get(src.problem_column)
        problem = problem.strip() if isinstance(problem, str) else ""
        level = row.get(src.level_column) if src.level_column else None
        # any known contest level (AMC8, AHSME, ...), not only the eight generation levels
        base["level"] = match_level(str(level)) if level else None
        if not problem:
            out.append(
                {
                    **base,
                    R.ID: R.make_id("seed-row", index),
                    "problem": None,
                    R.STATUS: R.STATUS_FILTERED,
                    R.REASON: R.REASON_SEED_EMPTY,
                }
            )
            continue
        sid = seed_id(problem)
        is_dup = sid in seen
        seen.add(sid)
        out.append(
            {
                **base,
                R.ID: R.make_id("seed-dup", index, sid) if is_dup else sid,
                "problem": problem,
                "duplicate_of": sid if is_dup else None,
                R.STATUS: R.STATUS_FILTERED if is_dup else R.STATUS_OK,
                R.REASON: R.REASON_SEED_DUPLICATE if is_dup else None,
            }
        )
    return pa.Table.from_pylist(out, schema=SEEDS_SCHEMA)
