"""Schemas of the synthesize job's outputs and the finalize step that splits results.

The streaming pipeline writes one wide row per combination to `results/`. Finalize walks
those files one at a time (bounded memory), drops duplicate ids, and writes the tables a
person and the next jobs read: drafts, judgements, accepted and rejected, each row with its
lineage; it returns the counters the ledger and the summary are made from.
"""

from __future__ import annotations

import json
import posixpath
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from promptcot_ray import records as R
from promptcot_ray.config import JudgeConfig
from promptcot_ray.storage import RunDir
from promptcot_ray.synthesis.stages import judge_column

_LINEAGE_FIELDS = R.LINEAGE_FIELDS
_OUTCOME_FIELDS = R.OUTCOME_FIELDS
_COMBO_FIELDS = [
    ("combination_id", pa.string()),
    ("combination_index", pa.int64()),
    ("concepts", pa.list_(pa.string())),
    ("level", pa.string()),
    ("pool_version", pa.string()),
    ("sampler_seed", pa.int64()),
]
_DRAFT_FIELDS = [
    ("draft_id", pa.string()),
    ("generator_model", pa.string()),
    ("generator_prompt_version", pa.string()),
    ("generation_seed", pa.int64()),
    ("draft_text", pa.string()),
    ("rationale", pa.string()),
    ("problem", pa.string()),
    ("draft_tokens_in", pa.int64()),
    ("draft_tokens_out", pa.int64()),
    ("draft_status", pa.string()),
    ("draft_reason", pa.string()),
    ("draft_error", pa.string()),
]
_JUDGE_FIELD_TYPES = {
    "id": pa.string(),
    "model": pa.string(),
    "prompt_version": pa.string(),
    "seed": pa.int64(),
    "text": pa.string(),
    "verdict": pa.string(),
    "ratings": pa.string(),
    "source": pa.string(),
    "status": pa.string(),
    "reason": pa.string(),
    "error": pa.string(),
    "tokens_in": pa.int64(),
    "tokens_out": pa.int64(),
}
_DECISION_FIELDS = [
    ("accepted", pa.bool_()),
    (R.STATUS, pa.string()),
    (R.REASON, pa.string()),
    ("rejected_stage", pa.string()),
    ("rejected_by", pa.string()),
]


def results_schema(num_judges: int) -> pa.Schema:
    judge_fields = [
        (judge_column(i, name), typ)
        for i in range(num_judges)
        for name, typ in _JUDGE_FIELD_TYPES.items()
    ]
    return pa.schema(_COMBO_FIELDS + _DRAFT_FIELDS + judge_fields + _DECISION_FIELDS)


DRAFTS_SCHEMA = pa.schema(
    _LINEAGE_FIELDS
    + [c for c in _COMBO_FIELDS if c[0] != "combination_id"]
    + [("text", pa.string()), ("rationale", pa.string()), ("problem", pa.string())]
    + [("tokens_in", pa.int64()), ("tokens_out", pa.int64())]
    + _OUTCOME_FIELDS
)
JUDGEMENTS_SCHEMA = pa.schema(
    _LINEAGE_FIELDS
    + [("draft_id", pa.string()), ("judge", pa.string()), ("text", pa.string())]
    + [("verdict", pa.string()), ("ratings", pa.string()), ("source", pa.string())]
    + [("tokens_in", pa.int64()), ("tokens_out", pa.int64())]
    + _OUTCOME_FIELDS
)
ACCEPTED_SCHEMA = pa.schema(
    _LINEAGE_FIELDS
    + [("combination_id", pa.string()), ("concepts", pa.list_(pa.string()))]
    + [("level", pa.string()), ("rationale", pa.string()), ("problem", pa.string())]
    + [("verdicts", pa.string()), ("round", pa.int64())]
)
REJECTED_SCHEMA = pa.schema(
    _LINEAGE_FIELDS
    + [("combination_id", pa.string()), ("rejected_stage", pa.string())]
    + [("rejected_by", pa.string())]
    + _OUTCOME_FIELDS
)
OUTPUT_TABLES = ("drafts", "judgements", "accepted", "rejected")


@dataclass
class RoundCounts:
    """Counters computed from the written rows (never from in-memory guesses)."""

    combinations: int = 0
    drafts: int = 0
    parsed: int = 0
    judged: int = 0
    accepted: int = 0
    rejected: Counter[str] = field(default_factory=Counter)
    generate_rejected: Counter[str] = field(default_factory=Counter)
    judge_rejected: dict[str, Counter[str]] = field(default_factory=dict)
    judge_verdicts: dict[str, Counter[str]] = field(default_factory=dict)
    tokens: Counter[str] = field(default_factory=Counter)
    errors: int = 0


def _draft_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        **R.lineage(
            r["draft_id"],
            [r["combination_id"]],
            R.STAGE_GENERATE,
            r["generator_model"],
            r["generator_prompt_version"],
            r["generation_seed"],
            0,
        ),
        **{k: r[k] for k, _ in _COMBO_FIELDS if k != "combination_id"},
        "text": r["draft_text"],
        "rationale": r["rationale"],
        "problem": r["problem"],
        "tokens_in": r["draft_tokens_in"],
        "tokens_out": r["draft_tokens_out"],
        R.STATUS: r["draft_status"],
        R.REASON: r["draft_reason"],
        R.ERROR: r["draft_error"],
    }


def _judgement_rows(r: dict[str, Any], judges: tuple[JudgeConfig, ...]) -> list[dict[str, Any]]:
    rows = []
    for i, judge in enumerate(judges):
        c = lambda f, i=i: r[judge_column(i, f)]  # noqa: E731
        if c("status") is None:  # the draft never reached this judge
            continue
        rows.append(
            {
                **R.lineage(
                    c("id"),
                    [r["draft_id"]],
                    R.STAGE_JUDGE,
                    c("model"),
                    c("prompt_version"),
                    c("seed"),
                    0,
                ),
                "draft_id": r["draft_id"],
                "judge": judge.name,
                **{f: c(f) for f in ("text", "verdict", "ratings", "source")},
                **{f: c(f) for f in ("tokens_in", "tokens_out")},
                R.STATUS: c("status"),
                R.REASON: c("reason"),
                R.ERROR: c("error"),
            }
        )
    return rows


def _accepted_row(r: dict[str, Any], judgements: list[dict[str, Any]], rnd: int) -> dict[str, Any]:
    parents = [r["combination_id"], *(j[R.ID] for j in judgements)]
    return {
        **R.lineage(
            r["draft_id"],
            parents,
            R.STAGE_VERDICT,
            r["generator_model"],
            r["generator_prompt_version"],
            r["generation_seed"],
            0,
        ),
        "combination_id": r["combination_id"],
        "concepts": r["concepts"],
        "level": r["level"],
        "rationale": r["rationale"],
        "problem": r["problem"],
        "verdicts": json.dumps({j["judge"]: j["verdict"] for j in judgements}, sort_keys=True),
        "round": rnd,
    }


def _rejected_row(r: dict[str, Any]) -> dict[str, Any]:
    return {
        **R.lineage(
            r["draft_id"],
            [r["combination_id"]],
            r["rejected_stage"],
            r["generator_model"],
            r["generator_prompt_version"],
            r["generation_seed"],
            0,
        ),
        "combination_id": r["combination_id"],
        "rejected_stage": r["rejected_stage"],
        "rejected_by": r["rejected_by"],
        R.STATUS: r[R.STATUS],
        R.REASON: r[R.REASON],
        R.ERROR: r["draft_error"] if r["rejected_stage"] == R.STAGE_GENERATE else None,
    }


def duplicate_rejections(combos: pa.Table) -> list[dict[str, Any]]:
    """Rejected rows for combinations dropped as duplicates before generation."""
    rows = []
    for c in combos.filter(pa.compute.equal(combos[R.STATUS], R.STATUS_FILTERED)).to_pylist():
        rows.append(
            {
                **R.lineage(
                    c[R.ID],
                    [],
                    R.STAGE_COMBINATIONS,
                    None,
                    None,
                    c[R.SEED],
                    c[R.SAMPLE_INDEX],
                ),
                "combination_id": c[R.ID],
                "rejected_stage": R.STAGE_COMBINATIONS,
                "rejected_by": None,
                R.STATUS: R.STATUS_FILTERED,
                R.REASON: c[R.REASON],
                R.ERROR: None,
            }
        )
    return rows


def _count(counts: RoundCounts, r: dict[str, Any], judgements: list[dict[str, Any]]) -> None:
    counts.drafts += 1
    counts.tokens["generate_in"] += r["draft_tokens_in"] or 0
    counts.tokens["generate_out"] += r["draft_tokens_out"] or 0
    if r["draft_status"] == R.STATUS_ERROR:
        counts.errors += 1
    if r["draft_status"] != R.STATUS_OK:
        counts.generate_rejected[r["draft_reason"]] += 1
    else:
        counts.parsed += 1
    if judgements and all(j[R.STATUS] == R.STATUS_OK for j in judgements):
        counts.judged += 1
    for j in judgements:
        counts.judge_verdicts.setdefault(j["judge"], Counter())[j["verdict"] or "none"] += 1
        counts.tokens[f"judge_{j['judge']}_in"] += j["tokens_in"] or 0
        counts.tokens[f"judge_{j['judge']}_out"] += j["tokens_out"] or 0
        if j[R.STATUS] == R.STATUS_ERROR:
            counts.errors += 1
    if r["accepted"]:
        counts.accepted += 1
    else:
        counts.rejected[r[R.REASON]] += 1
        if r["rejected_stage"] == R.STAGE_JUDGE:
            counts.judge_rejected.setdefault(r["rejected_by"], Counter())[r[R.REASON]] += 1


def _winners(run: RunDir, files: list[str]) -> set[tuple[int, int]]:
    """(file, row) positions to keep: one per combination, a finished copy over an error.

    Reads only two small columns, so deciding costs little memory even at 400k rows.
    """
    chosen: dict[str, tuple[int, int, bool]] = {}
    for fi, rel in enumerate(files):
        table = run.read_parquet_file(rel, columns=["combination_id", R.STATUS])
        ids, statuses = table[0].to_pylist(), table[1].to_pylist()
        for ri, (cid, status) in enumerate(zip(ids, statuses, strict=True)):
            held = chosen.get(cid)
            if held is None or (held[2] and status != R.STATUS_ERROR):
                chosen[cid] = (fi, ri, status == R.STATUS_ERROR)
    return {(fi, ri) for fi, ri, _ in chosen.values()}


def finalize(
    run: RunDir,
    round_dir: str,
    judges: tuple[JudgeConfig, ...],
    rnd: int,
    combos: pa.Table,
) -> RoundCounts:
    """Split results into the four output tables, dropping duplicate ids; count everything."""
    run.delete_file(f"{round_dir}/_SUCCESS.json")  # outputs are about to change
    for name in OUTPUT_TABLES:
        run.delete_dir(posixpath.join(round_dir, name))
    counts = RoundCounts(combinations=combos.num_rows)
    dups = duplicate_rejections(combos)
    for d in dups:
        counts.rejected[d[R.REASON]] += 1
    if dups:
        run.write_table(
            f"{round_dir}/rejected/part-duplicates.parquet",
            pa.Table.from_pylist(dups, schema=REJECTED_SCHEMA),
        )
    files = run.list_files(f"{round_dir}/results", ".parquet")
    keep = _winners(run, files)
    for fi, rel in enumerate(files):
        out: dict[str, list[dict[str, Any]]] = {name: [] for name in OUTPUT_TABLES}
        for ri, r in enumerate(run.read_parquet_file(rel).to_pylist()):
            if (fi, ri) not in keep:
                continue  # exactly-once: a row written twice counts once
            judgements = _judgement_rows(r, judges)
            _count(counts, r, judgements)
            out["drafts"].append(_draft_row(r))
            out["judgements"] += judgements
            if r["accepted"]:
                out["accepted"].append(_accepted_row(r, judgements, rnd))
            else:
                out["rejected"].append(_rejected_row(r))
        part = posixpath.basename(rel)
        for name, schema in zip(OUTPUT_TABLES, _SCHEMAS, strict=True):
            if out[name]:
                table = pa.Table.from_pylist(out[name], schema=schema)
                run.write_table(f"{round_dir}/{name}/{part}", table)
    return counts


_SCHEMAS = (DRAFTS_SCHEMA, JUDGEMENTS_SCHEMA, ACCEPTED_SCHEMA, REJECTED_SCHEMA)
