"""Round k+1's generator SFT rows: round k's accepted problems in the generator's format.

Each accepted row already holds what the generator should have written for its concepts and
level (the rationale and the problem), so it becomes a prompt/completion row exactly like
the rationales job's: prompt = the generator prompt, completion = the tagged rationale and
problem. The original rationale rows can be added (`retrain_with_rationales`).
"""

from __future__ import annotations

import pyarrow as pa

from promptcot_ray import layout, stage_marker
from promptcot_ray import records as R
from promptcot_ray.prompts import generator as generator_prompt
from promptcot_ray.rationales.job import DATA_DIR as RATIONALES_DIR
from promptcot_ray.rationales.stages import generator_prompt_json
from promptcot_ray.records import make_id
from promptcot_ray.storage import RunDir

STAGE_GENERATOR_SFT = "generator_sft"
ROWS_PER_FILE = 50_000  # bounded files (and driver memory per write) at the 400k scale
SCHEMA = pa.schema(
    [*R.LINEAGE_FIELDS, ("prompt", pa.string()), ("completion", pa.string())]
    + [("source", pa.string()), ("round", pa.int64())]
)


class NoGeneratorData(RuntimeError):
    """The previous round accepted nothing and the rationale rows are not added."""


def settings_hash(round_index: int, with_rationales: bool) -> str:
    """The config hash of this step's marker: what decides its rows."""
    return make_id("generator-data", round_index, with_rationales)


def data_dir(round_index: int) -> str:
    return layout.generator_data(round_index)


def accepted_rows(run: RunDir, previous_round: int) -> list[dict]:
    """SFT rows from one round's accepted problems, each keyed by its accepted row's id."""
    source = layout.round_part(previous_round, "accepted")
    table = run.read_table(source)
    rows = []
    for r in table.to_pylist() if table is not None else []:
        rows.append(
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
                "source": source,
                "round": previous_round,
            }
        )
    return rows


def rationale_rows(run: RunDir) -> list[dict]:
    table = run.read_table(RATIONALES_DIR, columns=[*R.LINEAGE_COLUMNS, "prompt", "completion"])
    return [
        {**r, "source": RATIONALES_DIR, "round": None}
        for r in (table.to_pylist() if table is not None else [])
    ]


def build(run: RunDir, round_index: int, with_rationales: bool) -> dict[str, int]:
    """Write round `round_index`'s generator data; returns the row counts by source."""
    accepted = accepted_rows(run, round_index - 1)
    rationales = rationale_rows(run) if with_rationales else []
    if not accepted and not rationales:
        raise NoGeneratorData(
            f"round {round_index - 1} accepted no problem and retrain_with_rationales is off: "
            f"there is nothing to train round {round_index}'s generator on"
        )
    rows = sorted(accepted + rationales, key=lambda r: r[R.ID])  # stable file contents
    target = data_dir(round_index)
    stage_marker.begin(run, target)
    run.delete_dir(target)  # a partial earlier attempt (no marker) is rewritten whole
    for start in range(0, len(rows), ROWS_PER_FILE):
        chunk = pa.Table.from_pylist(rows[start : start + ROWS_PER_FILE], schema=SCHEMA)
        run.write_table(f"{target}/part-{start // ROWS_PER_FILE:05d}.parquet", chunk)
    counts = {"accepted": len(accepted), "rationales": len(rationales)}
    stage_marker.commit(run, target, settings_hash(round_index, with_rationales), counts)
    return counts
