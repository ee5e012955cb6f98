"""`promptcot-ray report RUN`: read a run directory, write report/index.html and its plots.

The report is written into the run directory through the same storage layer as every job,
so `report s3://bucket/run` puts report/ next to the run's data. Each file is one atomic
write (local rename or a single S3 PUT) and the page comes last, after every figure it shows.
"""

from __future__ import annotations

import logging

import pyarrow.fs as pafs

from promptcot_ray import layout
from promptcot_ray.config import StorageConfig
from promptcot_ray.records import now_iso
from promptcot_ray.report import plots
from promptcot_ray.report.collect import collect
from promptcot_ray.report.metrics import Findings, findings
from promptcot_ray.report.page import render
from promptcot_ray.storage import RunDir

logger = logging.getLogger(__name__)

REPORT_DIR = layout.REPORT
PAGE = layout.REPORT_INDEX
PLOTS_DIR = "plots"  # relative to the page
_KNOWN_PARTS = ("ledger.jsonl", "synthesis", "concepts", "problems", "distill", "models", "eval")


class NoRunDirectory(RuntimeError):
    """The path is not a run directory (missing, or none of the jobs' outputs in it)."""


def draw(f: Findings) -> dict[str, bytes]:
    """Every figure the run has data for, by name (sections without data draw nothing)."""
    figures: dict[str, bytes] = {}
    if not f.funnel.empty:
        figures["funnel"] = plots.funnel_plot(f.funnel)
    if not f.reasons.empty:
        figures["reasons"] = plots.reasons_plot(f.reasons)
    if not f.accepted.empty:
        figures["levels"] = plots.levels_plot(f.levels)
        figures["coverage"] = plots.coverage_plot(f.coverage)
        figures["lengths"] = plots.lengths_plot(f.accepted["problem_words"], f.data.solutions)
    for i, pair in enumerate(f.agreement):
        figures[f"agreement_{i}"] = plots.confusion_plot(pair)
    if f.data.loss_curves:
        figures["loss"] = plots.loss_plot(f.data.loss_curves)
    if not f.ledger.empty:
        figures["cost"] = plots.cost_plot(f.ledger)
    return figures


def open_run(uri: str, storage: StorageConfig | None = None) -> RunDir:
    """The run directory at `uri`, refusing a path that holds none of the jobs' outputs.

    `storage` carries the S3 endpoint and region of the config that made the run (the
    pipeline passes its own); without it they come from the environment."""
    run = RunDir(uri, storage)
    if run.is_s3:
        run.preflight()  # a wrong endpoint, bucket or credentials: a clear StorageError
    if run.fs.get_file_info(run.path()).type == pafs.FileType.NotFound:
        raise NoRunDirectory(f"no run directory at {uri}")
    if not any(run.exists(part) for part in _KNOWN_PARTS):
        raise NoRunDirectory(
            f"{uri} holds none of a run's outputs ({', '.join(_KNOWN_PARTS)}): "
            "is it the run_dir of a job?"
        )
    return run


def build_report(run_dir: str, storage: StorageConfig | None = None) -> str:
    """Write report/index.html and report/plots/*.png into the run; return the page's URI."""
    run = open_run(run_dir, storage)
    f = findings(collect(run))
    run.delete_dir(f"{REPORT_DIR}/{PLOTS_DIR}")  # no stale figure from an earlier report
    names = {}
    for name, png in draw(f).items():
        names[name] = f"{PLOTS_DIR}/{name}.png"
        run.write_bytes(f"{REPORT_DIR}/{names[name]}", png)
    run.write_text(PAGE, render(f, names, now_iso()))
    logger.info("report: %d figures, page %s", len(names), run.uri_of(PAGE))
    return run.uri_of(PAGE)


EXPECTED_ERRORS = (NoRunDirectory,)
