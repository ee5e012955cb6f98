"""Round k+1's generator SFT rows: round k's accepted problems in the generator's format.

Each accepted row already holds what the generator should have written for its concepts and
level (the rationale and the problem), so it becomes a prompt/completion row exactly like
the rationales job's: prompt = the generator prompt, completion = the tagged rationale and
problem. The original rationale rows can be added (`retrain_with_rationales`).
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from promptcot_ray import layout, stage_marker
from promptcot_ray import records as R
from promptcot_ray.llm_stage import HELPER_CPUS, write_rows
from promptcot_ray.prompts import generator as generator_prompt
from promptcot_ray.rationales.job import DATA_DIR as RATIONALES_DIR
from promptcot_ray.rationales.stages import generator_prompt_json
from promptcot_ray.records import make_id
from promptcot_ray.sinks import conform
from promptcot_ray.storage import RunDir
from promptcot_ray.table_schemas import GENERATOR_DATA_SCHEMA as SCHEMA

STAGE_GENERATOR_SFT = "generator_sft"
ROWS_PER_FILE = 50_000  # bounded files (and worker memory per write) at the 400k scale


class NoGeneratorData(RuntimeError):
    """The previous round accepted nothing and the rationale rows are not added."""


def settings_hash(round_index: int, with_rationales: bool) -> str:
    """The config hash of this step's marker: what decides its rows."""
    return make_id("generator-data", round_index, with_rationales)


def data_dir(round_index: int) -> str:
    return layout.generator_data(round_index)


class AcceptedToSFT:
    """map_batches on the workers: accepted rows -> generator SFT rows, each keyed by its
    accepted row's id (the prompt and completion are per-row Python: text templates)."""

    def __init__(self, source: str, previous_round: int) -> None:
        self.source, self.previous_round = source, previous_round

    def __call__(self, batch: pa.Table) -> pa.Table:
        rows = [
            {
                **R.lineage(
                    make_id(STAGE_GENERATOR_SFT, r[R.ID]),
                    [r[R.ID]],
                    STAGE_GENERATOR_SFT,
                    r[R.MODEL],
                    generator_prompt.VERSION,
                    r[R.SEED],
                    None,
                ),
                "prompt": generator_prompt_json(list(r["concepts"]), r["level"]),
                "completion": generator_prompt.format_completion(r["rationale"], r["problem"]),
                "source": self.source,
                "round": self.previous_round,
            }
            for r in batch.to_pylist()
        ]
        return pa.Table.from_pylist(rows, schema=SCHEMA)


class TagRationales:
    """map_batches: the rationale rows as they are, with their source (no round)."""

    def __call__(self, batch: pa.Table) -> pa.Table:
        n = batch.num_rows
        batch = batch.append_column("source", pa.array([RATIONALES_DIR] * n, pa.string()))
        return conform(batch.append_column("round", pa.nulls(n, pa.int64())), SCHEMA)


def _read(run: RunDir, files: list[str], columns: list[str] | None = None) -> Any:
    import ray.data

    paths = [run.path(f) for f in files]
    ds = ray.data.read_parquet(paths, filesystem=run.fs, num_cpus=HELPER_CPUS)
    return ds.select_columns(columns) if columns else ds


def build(run: RunDir, round_index: int, with_rationales: bool) -> dict[str, int]:
    """Write round `round_index`'s generator data with Ray Data (read, convert and write in
    parallel: 200k accepted rows at the 400k scale); returns the row counts by source, from
    the Parquet footers."""
    source = layout.round_part(round_index - 1, "accepted")
    accepted = run.list_files(source, ".parquet")
    rationales = run.list_files(RATIONALES_DIR, ".parquet") if with_rationales else []
    counts = {"accepted": run.count_rows(accepted), "rationales": run.count_rows(rationales)}
    if not any(counts.values()):
        raise NoGeneratorData(
            f"round {round_index - 1} accepted no problem and retrain_with_rationales is off: "
            f"there is nothing to train round {round_index}'s generator on"
        )
    parts = []
    if counts["accepted"]:
        parts.append(
            _read(run, accepted).map_batches(
                AcceptedToSFT(source, round_index - 1), batch_format="pyarrow", num_cpus=HELPER_CPUS
            )
        )
    if counts["rationales"]:
        columns = [*R.LINEAGE_COLUMNS, "prompt", "completion"]
        parts.append(
            _read(run, rationales, columns).map_batches(
                TagRationales(), batch_format="pyarrow", num_cpus=HELPER_CPUS
            )
        )
    target = data_dir(round_index)
    stage_marker.begin(run, target)
    run.delete_dir(target)  # a partial earlier attempt (no marker) is rewritten whole
    rows = parts[0].union(*parts[1:]) if len(parts) > 1 else parts[0]
    rows = rows.repartition(target_num_rows_per_block=ROWS_PER_FILE)
    write_rows(rows, run, target, SCHEMA, R.ID)
    stage_marker.commit(run, target, settings_hash(round_index, with_rationales), counts)
    return counts
