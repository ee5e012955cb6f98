"""Read what a run directory holds into small pandas tables for the report.

Each Parquet folder is read with one concurrent pyarrow.dataset scan of only the columns a
plot or a table needs (a problem's text becomes its word count, column-wise), and a finished
round's counts come from its marker, so the report costs a few requests per folder, not one
per file, and a run of 400k problems fits in memory.
A part the run does not have is None or empty, never an error: a run may hold only synthesis.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from promptcot_ray import layout, stage_marker
from promptcot_ray import records as R
from promptcot_ray.concepts.pool import CONCEPTS_TABLE
from promptcot_ray.ledger import read_ledger
from promptcot_ray.storage import RunDir
from promptcot_ray.train.loop import curve_from_csv

JUDGEMENT_COLUMNS = ["draft_id", "judge", "verdict", "ratings", R.STATUS]


@dataclass
class RoundData:
    """One synthesis round: row counts and the small columns the report plots."""

    index: int
    complete: bool  # _SUCCESS.json exists; otherwise counts may be partial
    combinations: int | None  # None: the folder is missing
    unique: int | None
    parsed: int | None
    judgements: pd.DataFrame  # JUDGEMENT_COLUMNS
    accepted: pd.DataFrame  # id, level, concepts, problem_words
    rejected: Counter[str] = field(default_factory=Counter)
    quota: dict[str, Any] | None = None  # a finished quota round: target, stop reason, levels
    cascade: dict[str, Any] | None = None  # judges in a cascade: {"audit_fraction": f}

    @property
    def name(self) -> str:
        return f"round-{self.index}"


@dataclass
class RunData:
    """Everything the report shows, read from one run directory."""

    uri: str
    rounds: list[RoundData]
    ledger: list[dict[str, Any]]
    pool_size: int | None = None
    kept: pd.DataFrame | None = None  # problems/ (id, round); None: quality not run
    removed: Counter[str] | None = None
    labels: pd.DataFrame | None = None  # distill/labels: problem_id, status, reason
    solutions: pd.DataFrame | None = None  # distill/solutions: status, reason, tokens_out
    loss_curves: dict[str, pd.DataFrame] = field(default_factory=dict)
    evals: dict[str, dict[str, Any]] = field(default_factory=dict)


def scan(
    run: RunDir, rel: str, columns: list[str], reduce: Callable[[pa.Table], pa.Table] | None = None
) -> pd.DataFrame | None:
    """Read `columns` of every Parquet file under `rel` (concurrently), then `reduce` them."""
    table = run.read_table(rel, columns)
    if table is None:
        return None
    return (reduce(table) if reduce else table).to_pandas()


def _word_counts(table: pa.Table) -> pa.Table:
    """Replace the problem text by its whitespace word count (the report needs no text).

    Runs of non-blank characters, counted by an Arrow kernel (ASCII whitespace separates).
    """
    words = pc.fill_null(pc.count_substring_regex(table["problem"], r"\S+"), 0)
    return table.drop_columns(["problem"]).append_column("problem_words", words.cast(pa.int64()))


def _subdirs(run: RunDir, rel: str) -> list[str]:
    return run.list_dirs(rel)


def _counts(run: RunDir, rel: str) -> tuple[int | None, int | None]:
    """(rows, rows with status ok) under `rel`; (None, None) when the folder has no rows."""
    df = scan(run, rel, [R.STATUS])
    if df is None:
        return None, None
    return len(df), int((df[R.STATUS] == R.STATUS_OK).sum())


def _round_counts(
    run: RunDir, base: str, counts: dict[str, Any]
) -> tuple[int | None, int | None, int | None]:
    """(combinations, unique, parsed): from a finished round's marker, else from the rows."""
    if {"combinations", "parsed", "rejected"} <= counts.keys():
        dropped = sum(counts["rejected"].get(r, 0) for r in R.COMBINATION_REASONS)
        return counts["combinations"], counts["combinations"] - dropped, counts["parsed"]
    combinations, unique = _counts(run, f"{base}/combinations")  # duplicates are filtered
    _, parsed = _counts(run, f"{base}/drafts")
    return combinations, unique, parsed


def read_round(run: RunDir, index: int) -> RoundData:
    """Counts and plotted columns of synthesis/round-<index>."""
    base = layout.round_dir(index)
    judgements = scan(run, f"{base}/judgements", JUDGEMENT_COLUMNS)
    accepted = scan(run, f"{base}/accepted", [R.ID, "level", "concepts", "problem"], _word_counts)
    rejected = scan(run, f"{base}/rejected", [R.REASON])
    marker_counts = _marker_counts(run, base)
    combinations, unique, parsed = _round_counts(run, base, marker_counts)
    return RoundData(
        index=index,
        complete=run.is_complete(base),
        combinations=combinations,
        unique=unique,
        parsed=parsed,
        judgements=(
            judgements if judgements is not None else pd.DataFrame(columns=JUDGEMENT_COLUMNS)
        ),
        accepted=(
            accepted
            if accepted is not None
            else pd.DataFrame(columns=[R.ID, "level", "concepts", "problem_words"])
        ),
        rejected=Counter(rejected[R.REASON].fillna("none")) if rejected is not None else Counter(),
        quota=_entry(marker_counts, "quota"),
        cascade=_entry(marker_counts, "cascade"),
    )


def _marker_counts(run: RunDir, base: str) -> dict[str, Any]:
    """A finished round's marker counts ({} for an unfinished round)."""
    marker = stage_marker.read(run, base) if run.is_complete(base) else None
    counts = (marker or {}).get("counts")
    return counts if isinstance(counts, dict) else {}


def _entry(counts: dict[str, Any], key: str) -> dict[str, Any] | None:
    """`quota` (target, stop reason, levels) or `cascade` (its audit fraction); None when
    the round did not use it."""
    value = counts.get(key)
    return value if isinstance(value, dict) else None


def round_indices(run: RunDir) -> list[int]:
    """The k of every synthesis/round-<k> folder, in numeric order."""
    found = (layout.round_index(name) for name in _subdirs(run, layout.SYNTHESIS))
    return sorted(k for k in found if k is not None)


def _pool_size(run: RunDir) -> int | None:
    rel = f"{layout.POOL}/{CONCEPTS_TABLE}.parquet"
    return run.read_parquet_file(rel, ["concept_id"]).num_rows if run.exists(rel) else None


def _loss_curves(run: RunDir) -> dict[str, pd.DataFrame]:
    curves = {}
    for name in _subdirs(run, layout.MODELS):
        rel = layout.model_file(name, layout.CURVE_FILE)
        if run.exists(rel):
            curves[name] = pd.DataFrame(curve_from_csv(run.read_text(rel)))
    return curves


def _evals(run: RunDir) -> dict[str, dict[str, Any]]:
    return {
        name: run.read_json(layout.eval_summary(name))
        for name in _subdirs(run, layout.EVAL)
        if run.exists(layout.eval_summary(name))
    }


def _removed(run: RunDir) -> Counter[str] | None:
    df = scan(run, layout.PROBLEMS_REMOVED, [R.REASON])
    if df is None:
        return Counter() if run.is_complete(layout.PROBLEMS_REMOVED) else None
    return Counter(df[R.REASON].fillna("none"))


def _solutions(run: RunDir) -> pd.DataFrame | None:
    def valid_flag(table: pa.Table) -> pa.Table:
        return table.append_column("valid", pc.equal(table[R.STATUS], R.STATUS_OK))

    return scan(run, layout.SOLUTIONS, [R.STATUS, R.REASON, "tokens_out"], valid_flag)


def collect(run: RunDir) -> RunData:
    """Read the run directory's outputs; parts that are missing stay None or empty."""
    kept = scan(run, layout.PROBLEMS, [R.ID, "round"])
    if kept is None and run.is_complete(layout.PROBLEMS):  # the gates ran and kept nothing
        kept = pd.DataFrame(columns=[R.ID, "round"])
    return RunData(
        uri=run.uri,
        rounds=[read_round(run, k) for k in round_indices(run)],
        ledger=read_ledger(run),
        pool_size=_pool_size(run),
        kept=kept,
        removed=_removed(run),
        labels=scan(run, layout.LABELS, ["problem_id", R.STATUS, R.REASON]),
        solutions=_solutions(run),
        loss_curves=_loss_curves(run),
        evals=_evals(run),
    )
