"""The catalog: one declaration per dataset, and a run directory checked against it."""

from __future__ import annotations

import pyarrow as pa
from typer.testing import CliRunner

from promptcot_ray import catalog, layout
from promptcot_ray import records as R
from promptcot_ray.cli import app
from promptcot_ray.storage import RunDir
from promptcot_ray.synthesis.outputs import finalize
from promptcot_ray.table_schemas import ACCEPTED_SCHEMA, results_schema

from .test_outputs import JUDGES, _result

runner = CliRunner()


def test_every_table_folder_of_the_layout_has_exactly_one_catalog_entry():
    declared = [d.rel(0 if d.scope != catalog.EVAL_MODEL else "m") for d in catalog.DATASETS]
    tables = [layout.SEEDS, layout.EXTRACTED, layout.POOL, layout.RATIONALE_RESULTS]
    tables += [layout.RATIONALE_DATA, layout.RATIONALE_REJECTS, layout.PROBLEMS]
    tables += [layout.PROBLEMS_REMOVED, layout.SOLUTIONS, layout.LABELS, layout.DISTILL_SFT]
    tables += [layout.round_part(0, p) for p in layout.ROUND_PARTS] + [layout.generator_data(0)]
    tables += [layout.eval_part("m", p) for p in ("generations", "samples")]
    assert sorted(declared) == sorted(tables)
    assert len(catalog.BY_NAME) == len(catalog.DATASETS)
    # every table but the pool (several tables in one folder) has a schema and an id column
    for d in catalog.DATASETS:
        assert (d.schema is None) == (d.name == "concept pool"), d.name
        assert d.schema is None or d.id_column in d.schema.names, d.name


def _finalized_round(tmp_path) -> RunDir:
    run = RunDir(str(tmp_path))
    rows = [
        _result(0, True, ("perfect", "perfect"), True, None),
        _result(1, True, ("perfect", None), False, R.REASON_JUDGE_UNPARSEABLE),
        _result(2, False, (), False, R.REASON_DRAFT_MISSING_BOTH),
    ]
    results = pa.Table.from_pylist(rows, schema=results_schema(2))
    run.write_table(f"{layout.round_part(3, 'results')}/part-a.parquet", results)
    combos = pa.table(
        {
            R.ID: ["c0", "c1", "c2"],
            R.SEED: [0] * 3,
            R.SAMPLE_INDEX: [0, 1, 2],
            R.STATUS: [R.STATUS_OK] * 3,
            R.REASON: [None] * 3,
        }
    )
    finalize(run, layout.round_dir(3), JUDGES, 3, combos)
    return run


def test_a_finalized_round_matches_its_declarations_and_says_it_is_not_committed(tmp_path):
    run = _finalized_round(tmp_path)
    found = {f.dataset.name: f for f in catalog.check_run(run)}
    assert set(found) == {"results", "drafts", "judgements", "accepted", "rejected"}
    assert all(f.key == 3 and not f.problems for f in found.values()), found
    # the results' judge_<i>_* columns are allowed extras; rows from the footers
    assert found["results"].rows == 3 and found["accepted"].rows == 1
    assert found["judgements"].rows == 4 and found["rejected"].rows == 2
    # finalize leaves the round uncommitted (the job commits it last)
    assert not any(f.complete for f in found.values())
    run.mark_complete(layout.round_dir(3), {"config_hash": "x"})
    assert all(f.complete for f in catalog.check_run(run) if f.dataset.name != "results")


def test_a_file_that_drifted_from_its_schema_is_named_with_each_departure(tmp_path):
    run = _finalized_round(tmp_path)
    good = run.read_table(layout.round_part(3, "accepted"))
    drifted = good.drop_columns(["level"]).append_column("note", pa.array(["x"]))
    drifted = drifted.set_column(
        drifted.schema.get_field_index("round"), "round", pa.array(["3"], pa.string())
    )
    run.write_table(f"{layout.round_part(3, 'accepted')}/part-zz.parquet", drifted)
    accepted = catalog.inspect(run, catalog.BY_NAME["accepted"], 3)
    assert accepted.files == 2 and accepted.rows == 2
    assert sorted(accepted.problems) == [
        "part-zz.parquet: column round is string, declared int64",
        "part-zz.parquet: missing column level",
        "part-zz.parquet: unexpected column note",
    ]
    assert catalog.schema_problems(catalog.BY_NAME["accepted"], ACCEPTED_SCHEMA) == []
    # a file that is not Parquet (a truncated write) is a problem, not a pass or a traceback
    run.write_bytes(f"{layout.round_part(3, 'accepted')}/part-zzz.parquet", b"PAR1 cut off")
    broken = catalog.inspect(run, catalog.BY_NAME["accepted"], 3)
    assert broken.files == 3 and broken.rows == 2
    assert any(p.startswith("part-zzz.parquet: unreadable: ") for p in broken.problems)

    result = runner.invoke(app, ["datasets", str(tmp_path)])
    assert result.exit_code == 1, result.output
    assert "accepted" in result.output and "synthesize" in result.output
    assert "missing column level" in result.output


def test_the_datasets_command_lists_a_sound_run_and_refuses_a_folder_that_is_not_one(tmp_path):
    _finalized_round(tmp_path / "run")
    result = runner.invoke(app, ["datasets", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    for name in ("drafts", "judgements", "accepted", "rejected", "results"):
        assert name in result.output
    assert "problem" not in result.output  # no schema problem line
    (tmp_path / "empty").mkdir()
    refused = runner.invoke(app, ["datasets", str(tmp_path / "empty")])
    assert refused.exit_code == 2 and "none of a run's outputs" in refused.output
