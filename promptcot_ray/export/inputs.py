"""What an export reads from a run: the final problems, their pseudo-labels, distillation rows.

The final problems are `problems/` when the quality gates finished, else every round's
`accepted/` (the same choice the distill job makes). Each table is read with
`pyarrow.dataset` over all its files at once: pyarrow reads the files in parallel threads,
so nothing loops over files or rows on the driver.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads

from promptcot_ray import layout
from promptcot_ray import records as R
from promptcot_ray.catalog import ACCEPTED, dataset_files
from promptcot_ray.distill.job import LABELS_DIR, SFT_DIR, SOLUTIONS_DIR
from promptcot_ray.storage import RunDir

logger = logging.getLogger(__name__)

SOURCE_PROBLEMS = "problems"  # after the quality gates
SOURCE_ACCEPTED = "accepted"  # every round's accepted rows (no quality job ran)


class ExportError(RuntimeError):
    """The run lacks what the chosen export format is made from."""


@dataclass(frozen=True)
class FinalProblems:
    """The run's final problems and where they came from (for the dataset card)."""

    table: pa.Table
    source: str  # SOURCE_PROBLEMS or SOURCE_ACCEPTED
    folder: str  # the run-relative folder (or folders) they were read from


def read_files(run: RunDir, files: list[str], columns: list[str] | None = None) -> pa.Table:
    """All `files` (run-relative Parquet paths) as one table, read in parallel by pyarrow."""
    dataset = pads.dataset([run.path(f) for f in files], filesystem=run.fs, format="parquet")
    return dataset.to_table(columns=columns, use_threads=True)


def read_folder(run: RunDir, rel: str, columns: list[str] | None = None) -> pa.Table | None:
    """Every Parquet file under `rel`; None when there is none."""
    files = run.list_files(rel, ".parquet")
    return read_files(run, files, columns) if files else None


def rows_with_ids(run: RunDir, rel: str, ids: pa.Array, columns: list[str]) -> pa.Table:
    """Only the rows of `rel` whose id is in `ids`: long texts are read for the picked rows
    alone (pyarrow applies the filter while it scans, file by file in parallel)."""
    files = [run.path(f) for f in run.list_files(rel, ".parquet")]
    dataset = pads.dataset(files, filesystem=run.fs, format="parquet")
    table = dataset.to_table(columns=columns, filter=pads.field(R.ID).isin(ids))
    return distinct_ids(table)


def distinct_ids(table: pa.Table, column: str = R.ID) -> pa.Table:
    """One row per id (a resumed stage may hold a row twice): the first of each id."""
    index = pa.array(range(table.num_rows), pa.int64())
    firsts = (
        pa.table({"k": table[column], "i": index}).group_by("k").aggregate([("i", "min")])["i_min"]
    )
    return table.take(firsts.take(pc.sort_indices(firsts)))


def final_problems(run: RunDir) -> FinalProblems:
    """problems/ when the quality job completed, else all rounds' accepted rows."""
    if run.is_complete(layout.PROBLEMS):
        table = read_folder(run, layout.PROBLEMS)
        source, folder = SOURCE_PROBLEMS, layout.PROBLEMS
    else:
        files = dataset_files(run, ACCEPTED)
        table = read_files(run, files) if files else None
        source, folder = SOURCE_ACCEPTED, layout.ACCEPTED_GLOB
        if table is not None:
            logger.info(
                "%s is not complete: exporting every round's accepted rows", layout.PROBLEMS
            )
    if table is None or not table.num_rows:
        raise ExportError(
            f"no final problems in {run.uri}: neither a complete {layout.PROBLEMS}/ (quality job) "
            "nor accepted rows under synthesis/round-*/accepted (synthesize job)"
        )
    return FinalProblems(distinct_ids(table), source, folder)


def labels(run: RunDir) -> pa.Table | None:
    """distill/labels (one row per problem, label + confidence or a reason), if distilled."""
    table = read_folder(run, LABELS_DIR)
    return distinct_ids(table) if table is not None else None


def confident_labels(run: RunDir) -> pa.Table:
    """Labels that passed the distill job's confidence bar (status ok, label present)."""
    table = labels(run)
    if table is None:
        raise ExportError(
            f"no pseudo-labels in {run.uri_of(LABELS_DIR)}: run `promptcot-ray distill` first "
            "(RL formats need a ground truth per problem)"
        )
    ok = pc.and_(pc.equal(table[R.STATUS], R.STATUS_OK), pc.is_valid(table["label"]))
    return table.filter(ok)


def sft_rows(run: RunDir, columns: list[str] | None = None) -> pa.Table:
    """distill/sft: the students' prompt/completion rows."""
    table = read_folder(run, SFT_DIR, columns)
    if table is None or not table.num_rows:
        raise ExportError(f"no distillation rows in {run.uri_of(SFT_DIR)}: run distill first")
    return distinct_ids(table)


def solutions(run: RunDir, columns: list[str] | None = None) -> pa.Table:
    """distill/solutions: every teacher sample with its checked answer or rejection reason."""
    table = read_folder(run, SOLUTIONS_DIR, columns)
    if table is None or not table.num_rows:
        raise ExportError(f"no teacher solutions in {run.uri_of(SOLUTIONS_DIR)}: run distill")
    return distinct_ids(table)
