"""The catalog of the run directory's datasets: what each is, where, who writes it, how it
is committed, and the Arrow schema every one of its files has.

`layout` names the folders; this module says what lives in them, so a reader, an export or
a person opening a run directory can check a table against one declaration instead of
trusting each job's writer (issue #13). `check_run` reads only Parquet footers, concurrently
(pyarrow.dataset), never the rows.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import pyarrow as pa
import pyarrow.parquet as pq

from promptcot_ray import layout
from promptcot_ray import records as R
from promptcot_ray import table_schemas as T
from promptcot_ray.storage import RunDir

RUN, ROUND, GENERATOR_ROUND, EVAL_MODEL = "run", "round", "generator round", "evaluated model"
FOOTER_THREADS = 32  # footers are small reads: latency-bound on S3


@dataclass(frozen=True)
class Dataset:
    """One dataset of the run directory. `path` and `marker` take the scope's key (a round
    index, a model name, or nothing for a run-wide dataset)."""

    name: str
    producer: str  # the job (CLI command) that writes it
    scope: str  # RUN, ROUND, GENERATOR_ROUND or EVAL_MODEL: what `key` is
    path: Callable[..., str]
    marker: Callable[..., str]  # the folder whose _SUCCESS.json commits this dataset
    schema: pa.Schema | None  # None: several tables in one folder (the concept pool)
    id_column: str | None = R.ID
    extra_columns: str = ""  # prefix of columns a file may add (results: one set per judge)

    def rel(self, key: int | str | None = None) -> str:
        return self.path(key)

    def marker_rel(self, key: int | str | None = None) -> str:
        return self.marker(key)


def _fixed(rel: str) -> Callable[..., str]:
    """A run-wide dataset's path: the same whatever the key."""
    return lambda _key=None: rel


def _round(part: str, k: int) -> str:
    return layout.round_part(k, part)


def _eval(part: str, name: str) -> str:
    return layout.eval_part(name, part)


def _run_dataset(name, producer, rel, marker, schema, **kw) -> Dataset:
    return Dataset(name, producer, RUN, _fixed(rel), _fixed(marker), schema, **kw)


def _round_dataset(part: str, schema: pa.Schema, marker=layout.round_dir, **kw) -> Dataset:
    return Dataset(part, "synthesize", ROUND, partial(_round, part), marker, schema, **kw)


def _eval_dataset(part: str, schema: pa.Schema) -> Dataset:
    return Dataset(
        f"eval {part}", "evaluate", EVAL_MODEL, partial(_eval, part), layout.eval_dir, schema
    )


DATASETS: tuple[Dataset, ...] = (
    _run_dataset("seeds", "concepts", layout.SEEDS, layout.SEEDS, T.SEEDS_SCHEMA),
    _run_dataset(
        "extracted concepts", "concepts", layout.EXTRACTED, layout.POOL, T.EXTRACTED_SCHEMA
    ),
    _run_dataset("concept pool", "concepts", layout.POOL, layout.POOL, None, id_column=None),
    _run_dataset(
        "rationale results",
        "rationales",
        layout.RATIONALE_RESULTS,
        layout.RATIONALES,
        T.RATIONALE_SCHEMA,
    ),
    _run_dataset(
        "rationales", "rationales", layout.RATIONALE_DATA, layout.RATIONALES, T.RATIONALE_SCHEMA
    ),
    _run_dataset(
        "rationale rejects",
        "rationales",
        layout.RATIONALE_REJECTS,
        layout.RATIONALES,
        T.RATIONALE_SCHEMA,
    ),
    _round_dataset("combinations", T.COMBINATION_SCHEMA, marker=partial(_round, "combinations")),
    _round_dataset(
        "results", T.results_schema(0), id_column="combination_id", extra_columns="judge_"
    ),
    _round_dataset("drafts", T.DRAFTS_SCHEMA),
    _round_dataset("judgements", T.JUDGEMENTS_SCHEMA),
    _round_dataset("accepted", T.ACCEPTED_SCHEMA),
    _round_dataset("rejected", T.REJECTED_SCHEMA),
    Dataset(
        "generator data",
        "pipeline",
        GENERATOR_ROUND,
        layout.generator_data,
        layout.generator_data,
        T.GENERATOR_DATA_SCHEMA,
    ),
    _run_dataset("problems", "quality", layout.PROBLEMS, layout.PROBLEMS, T.KEPT_SCHEMA),
    _run_dataset(
        "removed problems",
        "quality",
        layout.PROBLEMS_REMOVED,
        layout.PROBLEMS_REMOVED,
        T.REMOVED_SCHEMA,
    ),
    _run_dataset(
        "teacher solutions", "distill", layout.SOLUTIONS, layout.DISTILL, T.solution_schema()
    ),
    _run_dataset("pseudo-labels", "distill", layout.LABELS, layout.DISTILL, T.LABEL_SCHEMA),
    _run_dataset("distillation SFT", "distill", layout.DISTILL_SFT, layout.DISTILL, T.SFT_SCHEMA),
    _eval_dataset("generations", T.EVAL_GENERATION_SCHEMA),
    _eval_dataset("samples", T.EVAL_SAMPLE_SCHEMA),
)
BY_NAME = {d.name: d for d in DATASETS}
ACCEPTED = BY_NAME["accepted"]


def keys(run: RunDir, dataset: Dataset) -> list[int | str | None]:
    """The instances of `dataset` this run directory may hold: its rounds, evaluated models."""
    if dataset.scope == RUN:
        return [None]
    if dataset.scope == EVAL_MODEL:
        return list(run.list_dirs(layout.EVAL))
    parent = layout.GENERATOR_DATA if dataset.scope == GENERATOR_ROUND else layout.SYNTHESIS
    found = (layout.round_index(d) for d in run.list_dirs(parent))
    return sorted(k for k in found if k is not None)


def dataset_files(
    run: RunDir, dataset: Dataset, only: tuple[int | str, ...] | None = None
) -> list[str]:
    """The Parquet files of every instance of `dataset` (or of the keys `only` names): one
    listing per instance's folder (e.g. each round's compacted accepted/, a few keys), not a
    listing of everything under synthesis/."""
    chosen = [k for k in keys(run, dataset) if only is None or k in only]
    return [f for k in chosen for f in run.list_files(dataset.rel(k), ".parquet")]


def schema_problems(dataset: Dataset, schema: pa.Schema) -> list[str]:
    """How a file's schema departs from the declaration: missing, retyped, unexpected columns."""
    if dataset.schema is None:
        return []
    problems = []
    for field in dataset.schema:
        if field.name not in schema.names:
            problems.append(f"missing column {field.name}")
        elif not schema.field(field.name).type.equals(field.type):
            found = schema.field(field.name).type
            problems.append(f"column {field.name} is {found}, declared {field.type}")
    declared = set(dataset.schema.names)
    extra = [n for n in schema.names if n not in declared]
    unexpected = [
        n for n in extra if not (dataset.extra_columns and n.startswith(dataset.extra_columns))
    ]
    problems += [f"unexpected column {n}" for n in unexpected]
    return problems


@dataclass(frozen=True)
class Found:
    """One dataset instance in a run directory, from its files' footers."""

    dataset: Dataset
    key: int | str | None
    rel: str
    files: int
    rows: int
    complete: bool
    problems: tuple[str, ...]


def _footer(run: RunDir, rel: str) -> pq.FileMetaData | str:
    """A Parquet file's footer, or why it cannot be read (truncated, not Parquet, gone)."""
    try:
        return pq.read_metadata(run.path(rel), filesystem=run.fs)
    except (OSError, pa.ArrowException) as exc:
        return f"{type(exc).__name__}: {str(exc)[:200]}"


def inspect(run: RunDir, dataset: Dataset, key: int | str | None = None) -> Found | None:
    """Files, rows (footers only) and schema problems of one instance; None when absent."""
    rel = dataset.rel(key)
    files = run.list_files(rel, ".parquet")
    if not files:
        return None
    problems: list[str] = []
    rows = 0
    if dataset.schema is not None:
        # each file's own footer, fetched concurrently and once: its row count and its own
        # schema (a writer that drifted in one file is caught, not unified away)
        with ThreadPoolExecutor(FOOTER_THREADS) as pool:
            footers = list(pool.map(lambda f: _footer(run, f), files))
        for file, footer in zip(files, footers, strict=True):
            name = posixpath.basename(file)
            if isinstance(footer, str):  # fail closed: a file it cannot read is a problem
                problems.append(f"{name}: unreadable: {footer}")
                continue
            rows += footer.num_rows
            schema = footer.schema.to_arrow_schema()
            problems += [f"{name}: {p}" for p in schema_problems(dataset, schema)]
    complete = run.is_complete(dataset.marker_rel(key))
    return Found(dataset, key, rel, len(files), rows, complete, tuple(problems))


def check_run(run: RunDir) -> list[Found]:
    """Every dataset the run directory holds, in catalog order."""
    found = (inspect(run, d, k) for d in DATASETS for k in keys(run, d))
    return [f for f in found if f is not None]
