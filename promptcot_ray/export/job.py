"""`promptcot-ray export`: a run's final problems as a dataset for the next trainer.

Formats: `hf` (every final problem with its lineage and, when distillation ran, its
pseudo-label), `verl` and `openrlhf` (RL prompts with a confident pseudo-label as ground
truth), `sft` (the students' distillation chats) and `pairs` (chosen/rejected solutions).
Each export writes data/train-*.{parquet,jsonl}, a README.md card and export.json (format,
rows, ids), so a reader can compare what arrived with what the run holds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
import yaml

from promptcot_ray import layout
from promptcot_ray import records as R
from promptcot_ray.config import StorageConfig
from promptcot_ray.distill.job import SFT_DIR, SOLUTIONS_DIR
from promptcot_ray.export import card, inputs, pairs, rows, writers
from promptcot_ray.export.inputs import ExportError, FinalProblems
from promptcot_ray.prompts import solve as solve_prompt
from promptcot_ray.storage import RunDir, StorageError

logger = logging.getLogger(__name__)

FORMATS = ("hf", "verl", "openrlhf", "sft", "pairs")
EXT = {fmt: "jsonl" if fmt == "openrlhf" else "parquet" for fmt in FORMATS}
EXPECTED_ERRORS = (ExportError, StorageError)


@dataclass
class ExportSummary:
    fmt: str
    run_dir: str
    to: str
    rows: int
    files: list[str] = field(default_factory=list)
    hub_url: str | None = None


def run_instruction(run: RunDir) -> str:
    """The solve instruction the teacher saw (distill/config.yaml), so RL prompts match it."""
    rel = layout.config_file(layout.DISTILL)
    if run.exists(rel):
        cfg = yaml.safe_load(run.read_text(rel)) or {}
        if cfg.get("instruction"):
            return cfg["instruction"]
    return solve_prompt.INSTRUCTION


def hf_table(run: RunDir, final: FinalProblems) -> pa.Table:
    """Every final problem; label, confidence and label_id where distillation kept one."""
    table = final.table
    labels = inputs.labels(run)
    if labels is None:
        return table
    labels = labels.filter(pc.equal(labels[R.STATUS], R.STATUS_OK))
    positions = pc.index_in(table[R.ID], value_set=labels["problem_id"].combine_chunks())
    for name, column in (("label", "label"), ("confidence", "confidence"), ("label_id", R.ID)):
        table = table.append_column(name, labels[column].take(positions))
    return table


def build(run: RunDir, fmt: str, data_source: str, final: FinalProblems) -> pa.Table:
    """The export table of one format."""
    instruction = run_instruction(run)
    if fmt == "hf":
        return hf_table(run, final)
    if fmt == "sft":
        return rows.sft_table(inputs.sft_rows(run))
    labelled = rows.labelled_problems(final.table, inputs.confident_labels(run))
    if fmt == "verl":
        return rows.verl_table(labelled, data_source, instruction)
    if fmt == "openrlhf":
        return rows.openrlhf_table(labelled, instruction)
    return _pairs(run, labelled, instruction)


def _pairs(run: RunDir, labelled: pa.Table, instruction: str) -> pa.Table:
    """Pick the pairs on the small columns, then read only the picked rows' texts."""
    from promptcot_ray.solve.grading import DEFAULT_TIMEOUT_S, GradingPool

    pool = GradingPool(processes=1, timeout_s=DEFAULT_TIMEOUT_S)
    try:
        sft = inputs.sft_rows(run, pairs.SFT_KEYS)
        picked = pairs.pick_pairs(labelled, sft, inputs.solutions(run, pairs.SOLUTION_KEYS), pool)
    finally:
        pool.close()
    chosen = inputs.rows_with_ids(
        run, SFT_DIR, picked["chosen_sft_id"].combine_chunks(), [R.ID, "completion"]
    )
    rejected = inputs.rows_with_ids(
        run,
        SOLUTIONS_DIR,
        picked["rejected_id"].combine_chunks(),
        [R.ID, "text", "think_opened_by_prompt"],
    )
    return pairs.pairs_table(picked, chosen, rejected, instruction)


def export_ids(table: pa.Table, fmt: str) -> list[str]:
    """The ids an export carries (verl keeps them in extra_info)."""
    if fmt == "verl":
        return pc.struct_field(table["extra_info"], R.ID).to_pylist()
    return table[R.ID].to_pylist()


def export_run(
    run_uri: str,
    fmt: str,
    to: str,
    *,
    data_source: str = "promptcot-ray",
    shard_rows: int = 100_000,
    storage: StorageConfig | None = None,
) -> ExportSummary:
    """Write the run's export in `fmt` to `to` (local folder or s3:// prefix)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}")
    run = RunDir(run_uri, storage)
    dest = RunDir(to, storage)
    final = inputs.final_problems(run)
    table = build(run, fmt, data_source, final)
    if not table.num_rows:
        raise ExportError(f"the {fmt} export of {run.uri} would be empty (see the card's counts)")
    dest.preflight()
    files = writers.write_shards(dest, table, EXT[fmt], shard_rows)
    configs = card.frozen_configs(run)
    versions = final.table[R.PROMPT_VERSION].unique().drop_null().to_pylist()
    facts = card.CardFacts(
        run_uri=run.uri,
        fmt=fmt,
        rows=table.num_rows,
        data_files=f"{writers.DATA_DIR}/train-*.{EXT[fmt]}",
        source=final.source,
        final_problems=final.table.num_rows,
        levels=card.value_counts(final.table["level"]),
        models=card.models(configs),
        prompt_versions=sorted({*versions, solve_prompt.VERSION} if fmt != "hf" else versions),
        funnel=card.funnel(run),
        decontamination=card.decontamination(run, configs),
        configs=configs,
        columns=table.schema.names,
    )
    dest.write_text(writers.CARD, card.render(facts))
    ids = export_ids(table, fmt)
    manifest = {"format": fmt, "run_dir": run.uri, "rows": table.num_rows, "files": files}
    writers.write_manifest(dest, {**manifest, "source": final.source, "ids": ids})
    logger.info("exported %d %s rows from %s to %s", table.num_rows, fmt, run.uri, dest.uri)
    return ExportSummary(fmt, run.uri, dest.uri, table.num_rows, files)
