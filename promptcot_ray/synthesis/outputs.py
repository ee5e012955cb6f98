"""Finalize: split a round's results into drafts, judgements, accepted and rejected.

The streaming pipeline writes one wide row per combination to `results/` (id-keyed files,
the unit of resume). Finalize makes two concurrent pyarrow.dataset passes over them: the
first reads two columns to find duplicate copies of a combination (a retried row), the
second streams every column through vectorised Arrow builders (`split.py`) and writes the
four tables compacted (>= ROWS_PER_FILE rows or MAX_BUFFER_BYTES per file) under names
derived from their row ids. It returns the counters the ledger and the summary are made of.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from promptcot_ray import layout, stage_marker
from promptcot_ray import records as R
from promptcot_ray.storage import RunDir
from promptcot_ray.synthesis import split
from promptcot_ray.synthesis.config import JudgeConfig
from promptcot_ray.table_schemas import (
    judge_column,
)

OUTPUT_TABLES = layout.ROUND_OUTPUTS
ROWS_PER_FILE = 50_000  # compacted outputs: few large objects, not one per results file
MAX_BUFFER_BYTES = 256 << 20  # in-memory Arrow bytes per output file (~3x less on disk)
MAX_WRITES_IN_FLIGHT = 4
BUILD_ROWS = 8192  # results rows per builder call: amortises kernel overhead per batch
_KEY_COLUMNS = ["combination_id", R.STATUS]


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
    judge_calls_saved: Counter[str] = field(default_factory=Counter)  # skipped by the cascade
    tokens: Counter[str] = field(default_factory=Counter)
    errors: int = 0
    quota: dict[str, Any] | None = None  # a quota round: target, stop reason, per level
    cascade: dict[str, Any] | None = None  # judges in a cascade: its audit fraction

    def to_json(self) -> dict[str, Any]:
        """Plain dicts (dataclasses.asdict would rebuild each Counter from its item pairs)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        for name in ("judge_rejected", "judge_verdicts"):
            out[name] = {j: dict(c) for j, c in out[name].items()}
        return {k: dict(v) if isinstance(v, Counter) else v for k, v in out.items()}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RoundCounts:
        """Counts saved in a round's marker (a re-run of a finished round reads only this)."""
        nested = {k: {j: Counter(c) for j, c in d[k].items()} for k in ("judge_rejected",)}
        nested["judge_verdicts"] = {j: Counter(c) for j, c in d["judge_verdicts"].items()}
        flat = {k: Counter(d[k]) for k in ("rejected", "generate_rejected", "tokens")}
        flat["judge_calls_saved"] = Counter(d.get("judge_calls_saved") or {})  # older markers
        scalars = {k: d[k] for k in ("combinations", "drafts", "parsed", "judged", "accepted")}
        return cls(
            **scalars,
            **flat,
            **nested,
            errors=d["errors"],
            quota=d.get("quota"),
            cascade=d.get("cascade"),
        )


def _value_counts(values: pa.ChunkedArray | pa.Array) -> Counter[str]:
    return Counter({v["values"]: v["counts"] for v in pc.value_counts(values).to_pylist()})


def _n(mask: pa.ChunkedArray | pa.Array) -> int:
    return int(pc.sum(pc.fill_null(mask, False).cast(pa.int64())).as_py() or 0)


def _total(values: pa.ChunkedArray | pa.Array) -> int:
    return int(pc.sum(values).as_py() or 0)


def count_rows(counts: RoundCounts, t: pa.Table, judges: tuple[JudgeConfig, ...]) -> None:
    """Add one batch of (deduplicated) results rows to the counters, column-wise."""
    status = t["draft_status"]
    counts.drafts += t.num_rows
    counts.tokens["generate_in"] += _total(t["draft_tokens_in"])
    counts.tokens["generate_out"] += _total(t["draft_tokens_out"])
    counts.errors += _n(pc.equal(status, R.STATUS_ERROR))
    unparsed = pc.fill_null(pc.not_equal(status, R.STATUS_OK), True)
    counts.generate_rejected += _value_counts(t["draft_reason"].filter(unparsed))
    counts.parsed += t.num_rows - _n(unparsed)
    any_judged, all_ok = np.zeros(t.num_rows, bool), np.ones(t.num_rows, bool)
    drafted = pc.invert(unparsed)
    for i, judge in enumerate(judges):
        j_status = t[judge_column(i, "status")]
        present = pc.is_valid(j_status)
        if saved := _n(pc.and_(drafted, pc.invert(present))):  # a parsed draft not judged
            counts.judge_calls_saved[judge.name] += saved
        any_judged |= present.to_numpy()
        all_ok &= pc.or_(
            pc.invert(present), pc.fill_null(pc.equal(j_status, R.STATUS_OK), False)
        ).to_numpy()
        counts.errors += _n(pc.equal(j_status, R.STATUS_ERROR))
        if not _n(present):
            continue
        verdict = t[judge_column(i, "verdict")].filter(present)
        verdict = pc.fill_null(pc.if_else(pc.equal(verdict, ""), None, verdict), "none")
        counts.judge_verdicts.setdefault(judge.name, Counter()).update(_value_counts(verdict))
        for side in ("in", "out"):
            counts.tokens[f"judge_{judge.name}_{side}"] += _total(
                t[judge_column(i, f"tokens_{side}")]
            )
    counts.judged += int((any_judged & all_ok).sum())
    accepted = pc.fill_null(t["accepted"], False)
    counts.accepted += _n(accepted)
    rejected = t.select([R.REASON, "rejected_stage", "rejected_by"]).filter(pc.invert(accepted))
    counts.rejected += _value_counts(rejected[R.REASON])
    by_judge = rejected.filter(pc.equal(rejected["rejected_stage"], R.STAGE_JUDGE))
    groups = by_judge.group_by(["rejected_by", R.REASON]).aggregate([([], "count_all")])
    for g in groups.to_pylist():  # one entry per (judge, reason): a handful
        counts.judge_rejected.setdefault(g["rejected_by"], Counter())[g[R.REASON]] += g["count_all"]


def _losers(run: RunDir, files: list[str]) -> dict[int, pa.Array]:
    """Per results file, the combination ids whose copy there is not the one to keep.

    A combination written twice (a retried error row, a retried task) keeps its first
    finished copy, else its first copy, in file order. Reads two columns of every file.
    """
    parts = [
        pa.table({"cid": b["combination_id"], "err": pc.equal(b[R.STATUS], R.STATUS_ERROR),
                  "file": pa.array(np.full(b.num_rows, fi, np.int32))})
        for fi, b in run.iter_batches(files, _KEY_COLUMNS)
    ]  # fmt: skip
    if not parts:
        return {}
    keys = pa.concat_tables(parts)
    seen = keys.group_by("cid").aggregate([("cid", "count")])
    repeated = seen.filter(pc.greater(seen["cid_count"], 1))["cid"]
    if not len(repeated):
        return {}
    copies = keys.filter(pc.is_in(keys["cid"], value_set=repeated))
    copies = copies.sort_by([("cid", "ascending"), ("err", "ascending"), ("file", "ascending")])
    cid = copies["cid"].to_numpy(zero_copy_only=False)
    later = np.concatenate([[False], cid[1:] == cid[:-1]])  # not the first copy of its id
    lost = copies.filter(pa.array(later))
    by_file = lost.group_by("file").aggregate([("cid", "list")]).to_pydict()
    return {
        f: pa.array(c, pa.string())
        for f, c in zip(by_file["file"], by_file["cid_list"], strict=True)
    }


def _kept_rows(run: RunDir, files: list[str], losers: dict[int, pa.Array]) -> Iterator[pa.Table]:
    """Every column of the rows to keep, BUILD_ROWS at a time, read concurrently."""
    pending, rows = [], 0
    for fi, batch in run.iter_batches(files, None):
        if fi in losers:
            batch = batch.filter(pc.invert(pc.is_in(batch["combination_id"], losers[fi])))
        pending.append(batch)
        rows += batch.num_rows
        if rows >= BUILD_ROWS:
            yield pa.Table.from_batches(pending).combine_chunks()
            pending, rows = [], 0
    if rows:
        yield pa.Table.from_batches(pending).combine_chunks()


class CompactWriter:
    """Buffers each output table and writes it in large files named by their row ids."""

    def __init__(self, run: RunDir, round_dir: str, rows_per_file: int) -> None:
        self.run, self.round_dir, self.rows_per_file = run, round_dir, rows_per_file
        self.buffers: dict[str, list[pa.Table]] = {name: [] for name in OUTPUT_TABLES}
        self.pool = ThreadPoolExecutor(MAX_WRITES_IN_FLIGHT)  # writes overlap the next reads
        self.futures: list[Future] = []

    def add(self, name: str, table: pa.Table) -> None:
        """Buffer rows; write a file each time rows_per_file rows (or MAX_BUFFER_BYTES) wait."""
        if table.num_rows:
            self.buffers[name].append(table)
        held = pa.concat_tables(self.buffers[name]) if self.buffers[name] else None
        while held is not None and (
            held.num_rows >= self.rows_per_file or held.nbytes >= MAX_BUFFER_BYTES
        ):
            rows = min(held.num_rows, self.rows_per_file)
            if held.nbytes >= MAX_BUFFER_BYTES:  # wide rows: fewer per file, same bytes
                rows = max(1, min(rows, held.num_rows * MAX_BUFFER_BYTES // held.nbytes))
            self._write(name, held.slice(0, rows))
            held = held.slice(rows)
        self.buffers[name] = [held] if held is not None and held.num_rows else []

    def _write(self, name: str, table: pa.Table) -> None:
        table = table.combine_chunks()
        ids = table[R.ID].take(pc.sort_indices(table[R.ID])).to_pylist()
        rel = posixpath.join(self.round_dir, name, f"part-{R.make_id('part', ids)}.parquet")
        while len(self.futures) >= MAX_WRITES_IN_FLIGHT:  # bounds memory held by writes
            self.futures.pop(0).result()
        self.futures.append(self.pool.submit(self.run.write_table, rel, table))

    def close(self) -> None:
        """Write what is buffered and wait for every write (a failed write raises here)."""
        for name in OUTPUT_TABLES:
            if self.buffers[name]:
                self._write(name, pa.concat_tables(self.buffers[name]))
            self.buffers[name] = []
        for f in self.futures:
            f.result()
        self.pool.shutdown(wait=True)


def finalize(
    run: RunDir,
    round_dir: str,
    judges: tuple[JudgeConfig, ...],
    rnd: int,
    combos: pa.Table,
    rows_per_file: int = ROWS_PER_FILE,
) -> RoundCounts:
    """Split results into the four output tables, dropping duplicate ids; count everything.

    `combos` needs the id, seed, sample_index, status and reason columns. The round's
    marker goes first (the outputs are about to change); the caller commits it again last.
    """
    stage_marker.begin(run, round_dir)
    for name in OUTPUT_TABLES:
        run.delete_dir(posixpath.join(round_dir, name))
    created = R.now_iso()
    counts = RoundCounts(combinations=combos.num_rows)
    writer = CompactWriter(run, round_dir, rows_per_file)
    dups = split.duplicates_table(combos, created)
    counts.rejected += _value_counts(dups[R.REASON])
    writer.add("rejected", dups)
    files = run.list_files(f"{round_dir}/results", ".parquet")
    for t in _kept_rows(run, files, _losers(run, files)) if files else ():
        count_rows(counts, t, judges)
        writer.add("drafts", split.drafts_table(t, created))
        writer.add("judgements", split.judgements_table(t, judges, created))
        writer.add("accepted", split.accepted_table(t, judges, rnd, created))
        writer.add("rejected", split.rejected_table(t, created))
    writer.close()
    return counts
