"""Round k+1's generator data, built by Ray Data from round k's accepted rows and the
rationale rows: every row once, keyed by its parent, counts from what was written."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from promptcot_ray import layout
from promptcot_ray import records as R
from promptcot_ray.pipeline import generator_data
from promptcot_ray.prompts.generator import format_completion
from promptcot_ray.rationales.job import DATA_DIR as RATIONALES_DIR
from promptcot_ray.storage import RunDir
from promptcot_ray.table_schemas import ACCEPTED_SCHEMA

pytestmark = [pytest.mark.integration]


def _accepted(n: int, part: int) -> pa.Table:
    rows = []
    for i in range(n):
        lineage = R.lineage(f"acc-{part}-{i}", [f"c-{i}"], "verdict", "gen", "v", i, None)
        rows.append(
            {
                **lineage,
                "combination_id": f"c-{i}",
                "concepts": ["Vieta's formulas", f"concept {i}"],
                "level": "AIME",
                "rationale": f"Rationale {i}.",
                "problem": f"Problem {i}?",
                "verdicts": "{}",
                "round": 0,
            }
        )
    return pa.Table.from_pylist(rows, schema=ACCEPTED_SCHEMA)


def _rationales(n: int) -> pa.Table:
    rows = [
        {
            **R.lineage(f"rat-{i}", [f"seed-{i}"], "rationale", "writer", "r", 0, None),
            "prompt": "[]",
            "completion": f"completion {i}",
        }
        for i in range(n)
    ]
    return pa.Table.from_pylist(rows)


def test_generator_data_holds_every_accepted_and_rationale_row_once(ray_cluster, tmp_path):
    run = RunDir(str(tmp_path))
    for part, n in enumerate((300, 250)):  # two files, as a round writes several
        run.write_table(f"{layout.round_part(0, 'accepted')}/p{part}.parquet", _accepted(n, part))
    run.write_table(f"{RATIONALES_DIR}/r.parquet", _rationales(40))

    counts = generator_data.build(run, 1, with_rationales=True)
    assert counts == {"accepted": 550, "rationales": 40}
    target = generator_data.data_dir(1)
    rows = run.read_table(target).to_pylist()
    assert len(rows) == 590 and len({r[R.ID] for r in rows}) == 590
    assert run.is_complete(target)
    sft = [r for r in rows if r["round"] == 0]
    assert {p for r in sft for p in r[R.PARENT_IDS]} == {
        f"acc-{k}-{i}" for k, n in enumerate((300, 250)) for i in range(n)
    }
    one = next(r for r in sft if r[R.PARENT_IDS] == ["acc-1-7"])
    assert one["completion"] == format_completion("Rationale 7.", "Problem 7?")
    assert "Vieta's formulas" in json.dumps(json.loads(one["prompt"]))  # the generator prompt
    assert one[R.STAGE] == generator_data.STAGE_GENERATOR_SFT and one[R.MODEL] == "gen"
    tagged = [r for r in rows if r["source"] == RATIONALES_DIR]
    assert len(tagged) == 40 and all(r["round"] is None for r in tagged)

    ids = {r[R.ID] for r in sft}
    only = generator_data.build(run, 1, with_rationales=False)  # rebuilt whole, no rationales
    assert only == {"accepted": 550, "rationales": 0}
    assert set(run.read_table(target, columns=[R.ID]).column(R.ID).to_pylist()) == ids


def test_nothing_to_train_on_is_a_clear_error(ray_cluster, tmp_path):
    with pytest.raises(generator_data.NoGeneratorData, match="accepted no problem"):
        generator_data.build(RunDir(str(tmp_path)), 1, with_rationales=False)
