"""Exports read back by the libraries that consume them, compared with the run's own rows.

The run directory is written with the jobs' own code: synthesize's finalize and ledger
records and the quality job's row builders (through test_report's builders), and the distill
job's LabelProblem for labels and SFT rows, on teacher solutions checked by check_solution.
Each export is then loaded with `datasets` (as verl's RLHFDataset and OpenRLHF's
blending_datasets load Parquet and JSON files) and its ids and counts compared with the run.
"""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from promptcot_ray import records as R
from promptcot_ray.cli import app
from promptcot_ray.config import LLMConfig, StorageConfig, config_to_yaml
from promptcot_ray.distill.config import DistillConfig
from promptcot_ray.distill.job import LABELS_DIR, SFT_DIR, SOLUTIONS_DIR, STAGE_SOLVE
from promptcot_ray.distill.labeling import LABEL_SCHEMA, SFT_SCHEMA, LabelProblem
from promptcot_ray.export import ExportError, export_run
from promptcot_ray.export.writers import push_to_hub
from promptcot_ray.ledger import StageRecord, append_records
from promptcot_ray.quality.config import BenchmarkSource
from promptcot_ray.quality.outputs import KEPT_DIR
from promptcot_ray.solve.solutions import check_solution
from promptcot_ray.storage import RunDir
from promptcot_ray.synthesis.config import JudgeConfig, SynthesizeConfig
from promptcot_ray.table_schemas import solution_schema
from tests.unit.test_report import ROUNDS, _pool, _quality, _synthesis_round

TEACHER = "teacher-32b"
# Teacher answers per kept problem (sorted by id). None: a reply without \boxed{}.
ANSWERS = [
    ["1", "1", "2", None],  # label 1 (2 of 3 valid answers); "2" disagrees
    ["0.5", "1/2", "0.5", "3"],  # label 0.5 (1/2 is equivalent, so it agrees); "3" disagrees
    ["5", "6", "7", "8"],  # four groups, no strict majority: no label
]


def _solution(pid: str, problem: str, sample: int, answer: str | None) -> dict:
    # sample 1 is written as a reasoning template leaves it: <think> opened by the prompt
    opening = "" if sample == 1 else "<think>\n"
    body = f"The answer is \\boxed{{{answer}}}." if answer else "I could not finish."
    text = f"{opening}Let me work through it step {sample}.\n</think>\n{body}"
    checked = check_solution(text, "stop")
    return {
        **R.lineage(f"s-{pid}-{sample}", [pid], STAGE_SOLVE, TEACHER, "solve-v1", 7, sample),
        "problem_id": pid,
        "problem": problem,
        "text": text,
        "answer": checked.answer,
        "final_answer": answer,
        "finish_reason": "stop",
        "think_opened_by_prompt": checked.think_opened_by_prompt,
        "tokens_in": 40,
        "tokens_out": 100 + 10 * sample,
        R.STATUS: R.STATUS_OK if checked.reason is None else R.STATUS_FILTERED,
        R.REASON: checked.reason,
        R.ERROR: None,
    }


def _distill(run: RunDir, root: Path) -> None:
    """Solutions, then labels and SFT rows made by the distill job's own LabelProblem."""
    kept = sorted(run.read_table(KEPT_DIR).to_pylist(), key=lambda r: r[R.ID])
    assert len(kept) == len(ANSWERS)
    solutions = [
        _solution(row[R.ID], row["problem"], s, a)
        for row, answers in zip(kept, ANSWERS, strict=True)
        for s, a in enumerate(answers)
    ]
    table = pa.Table.from_pylist(solutions, solution_schema())
    run.write_table(f"{SOLUTIONS_DIR}/part-0.parquet", table)
    cfg = DistillConfig(storage=StorageConfig(run_dir=str(root)), teacher=LLMConfig(model=TEACHER))
    label = LabelProblem(cfg.min_confidence, cfg.select, cfg.instruction, 5.0)
    try:
        groups = [label(table.filter(pc.equal(table["problem_id"], r[R.ID]))) for r in kept]
    finally:
        label.pool.close()
    groups = pa.concat_tables(groups)
    run.write_table(f"{LABELS_DIR}/part-0.parquet", groups.drop_columns(["sft"]).cast(LABEL_SCHEMA))
    sft = pa.Table.from_pylist([x for g in groups["sft"].to_pylist() for x in g], SFT_SCHEMA)
    run.write_table(f"{SFT_DIR}/part-0.parquet", sft)
    run.write_text("distill/config.yaml", config_to_yaml(cfg))
    append_records(
        run,
        [
            StageRecord(
                job="distill",
                stage=STAGE_SOLVE,
                rows_in=len(solutions),
                rows_out=11,
                rejected={},
                model=TEACHER,
            )
        ],
    )


@pytest.fixture(scope="module")
def run_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("run")
    run = RunDir(str(root))
    cfg = SynthesizeConfig(
        storage=StorageConfig(run_dir=str(root)),
        generator={"model": "gen-8b"},
        judges=(JudgeConfig(name="a", llm=LLMConfig(model="judge-a")),),
    )
    _pool(run)
    for rnd in ROUNDS:
        _synthesis_round(run, rnd, cfg)
    run.write_text("config.yaml", config_to_yaml(cfg))
    _quality(run)
    bench = BenchmarkSource(name="math500", path="tests/data/benchmarks/math500.jsonl")
    run.write_text(
        "quality/config.yaml", json.dumps({"benchmarks": [bench.model_dump()], "ngram": 13})
    )
    _distill(run, root)
    return root


def table(root: Path, rel: str) -> pa.Table:
    return RunDir(str(root)).read_table(rel)


def load(out: Path, builder: str = "parquet") -> datasets.Dataset:
    ext = "jsonl" if builder == "json" else "parquet"
    files = sorted(str(p) for p in (out / "data").glob(f"train-*.{ext}"))
    return datasets.load_dataset(builder, data_files=files, split="train")


def confident(root: Path) -> dict[str, str]:
    labels = table(root, LABELS_DIR).to_pylist()
    return {r["problem_id"]: r["label"] for r in labels if r[R.STATUS] == R.STATUS_OK}


def test_hf_export_loads_with_datasets_and_has_every_final_problem(run_root, tmp_path):
    summary = export_run(str(run_root), "hf", str(tmp_path / "hf"), shard_rows=2)
    ds = load(tmp_path / "hf")
    kept = table(run_root, KEPT_DIR)
    assert sorted(ds["id"]) == sorted(kept[R.ID].to_pylist()) and summary.rows == len(ds)
    assert len(list((tmp_path / "hf" / "data").glob("*.parquet"))) == 2  # 3 rows, 2 per shard
    labels = confident(run_root)
    assert {r["id"]: r["label"] for r in ds if r["label"]} == labels
    assert set(R.LINEAGE_COLUMNS) <= set(ds.column_names)
    # the card's Hub metadata tells `load_dataset(folder)` where the data is
    assert sorted(datasets.load_dataset(str(tmp_path / "hf"), split="train")["id"]) == sorted(
        ds["id"]
    )


def test_dataset_card_states_the_run(run_root, tmp_path):
    export_run(str(run_root), "hf", str(tmp_path / "hf"))
    text = (tmp_path / "hf" / "README.md").read_text()
    for fact in ("gen-8b", "judge-a", TEACHER, "generator-v1", "math500", "13-gram"):
        assert fact in text, fact
    # funnel: round 0 made 10 combinations, 8 drafts parsed... accepted 3 -> 30.0%
    dups, outcomes = ROUNDS[0]
    accepted = sum(o == ("perfect", "perfect") for o in outcomes)
    assert f"| 0 | {dups + len(outcomes)} |" in text and f"| {accepted} | 30.0% |" in text
    levels = {r["level"] for r in table(run_root, KEPT_DIR).to_pylist()}
    assert all(f"| {level} |" in text for level in levels)
    assert "near_duplicate: 1" in text and "contaminated: 1" in text
    manifest = json.loads((tmp_path / "hf" / "export.json").read_text())
    assert manifest["source"] == "problems" and manifest["rows"] == len(manifest["ids"]) == 3


def test_verl_rows_follow_verls_schema_and_keep_only_confident_labels(run_root, tmp_path):
    export_run(str(run_root), "verl", str(tmp_path / "verl"))
    ds = load(tmp_path / "verl")
    labels = confident(run_root)
    assert len(labels) == 2 and len(ds) == 2
    for row in ds:  # the fields verl's RLHFDataset and default reward manager read
        assert row["data_source"] == "promptcot-ray" and row["ability"] == "math"
        [turn] = row["prompt"]
        assert turn["role"] == "user" and turn["content"].endswith("\\boxed{}.")
        assert row["extra_info"]["question"] in turn["content"]
        assert row["reward_model"] == {
            "style": "rule",
            "ground_truth": labels[row["extra_info"]["id"]],
        }
        assert row["extra_info"]["parent_ids"] and row["extra_info"]["model"] == "gen"
    assert sorted(ds["extra_info"][i]["id"] for i in range(2)) == sorted(labels)


def test_openrlhf_jsonl_has_its_input_and_label_keys(run_root, tmp_path):
    export_run(str(run_root), "openrlhf", str(tmp_path / "o"))
    ds = load(tmp_path / "o", "json")  # as OpenRLHF's blending_datasets loads .jsonl
    labels = confident(run_root)
    # train_ppo_ray --input_key input --label_key label: preprocess_data reads these two
    assert {row["id"]: row["label"] for row in ds} == labels
    assert all(isinstance(row["input"], str) and "\\boxed{}" in row["input"] for row in ds)


def test_sft_chats_are_the_distillation_rows(run_root, tmp_path):
    export_run(str(run_root), "sft", str(tmp_path / "sft"))
    ds = load(tmp_path / "sft")
    sft = {r[R.ID]: r for r in table(run_root, SFT_DIR).to_pylist()}
    assert sorted(ds["id"]) == sorted(sft) and len(sft) == 2
    for row in ds:
        user, assistant = row["messages"]
        assert json.loads(sft[row["id"]]["prompt"]) == [user]
        assert assistant == {"role": "assistant", "content": sft[row["id"]]["completion"]}
        assert assistant["content"].startswith("<think>")


def test_pairs_reject_only_a_disagreeing_solution(run_root, tmp_path):
    export_run(str(run_root), "pairs", str(tmp_path / "pairs"))
    ds = load(tmp_path / "pairs")
    labels = confident(run_root)
    assert sorted(ds["id"]) == sorted(labels)  # the low-confidence problem has no pair
    by_label = {row["label"]: row for row in ds}
    assert set(by_label) == {"1", "0.5"}
    assert by_label["1"]["rejected_answer"] == "2"
    # 1/2 equals the label 0.5 (math-verify): a different string, yet never rejected
    assert by_label["0.5"]["rejected_answer"] == "3"
    for row in ds:
        [chosen], [rejected] = row["chosen"], row["rejected"]
        assert chosen["role"] == rejected["role"] == "assistant"
        assert f"\\boxed{{{row['rejected_answer']}}}" in rejected["content"]
        assert rejected["content"].startswith("<think>") and row["prompt"][0]["role"] == "user"
        assert row["chosen_id"] != row["rejected_id"]


def test_without_quality_gates_the_accepted_rows_are_exported(tmp_path):
    run = RunDir(str(tmp_path / "run"))
    cfg = SynthesizeConfig(
        storage=StorageConfig(run_dir=str(tmp_path / "run")),
        generator={"model": "gen"},
        judges=(JudgeConfig(name="a", llm=LLMConfig(model="judge-a")),),
    )
    _synthesis_round(run, 0, cfg)
    export_run(str(tmp_path / "run"), "hf", str(tmp_path / "out"))
    accepted = run.read_table("synthesis/round-0/accepted")[R.ID].to_pylist()
    assert sorted(load(tmp_path / "out")["id"]) == sorted(accepted)
    assert "No quality gates ran" in (tmp_path / "out" / "README.md").read_text()
    with pytest.raises(ExportError, match="pseudo-labels"):
        export_run(str(tmp_path / "run"), "verl", str(tmp_path / "v"))


def test_cli_export_and_user_errors(run_root, tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app, ["export", str(run_root), "--format", "verl", "--to", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "2 verl rows" in result.output and (out / "README.md").exists()
    result = CliRunner().invoke(
        app, ["export", str(tmp_path / "none"), "--format", "hf", "--to", str(out)]
    )
    assert result.exit_code == 2 and "no final problems" in result.output
    result = CliRunner().invoke(app, ["export", str(run_root), "--format", "csv", "--to", str(out)])
    assert result.exit_code == 2 and "unknown format" in result.output


class RecordingHub:
    """An HfApi stand-in that records the calls an upload makes (no network here)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", {"repo_id": repo_id, **kwargs}))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))


def test_push_to_hub_uploads_the_export_folder_as_a_dataset(run_root, tmp_path):
    export_run(str(run_root), "hf", str(tmp_path / "hf"))
    hub = RecordingHub()
    url = push_to_hub(
        RunDir(str(tmp_path / "hf")), "me/promptcot", private=True, api=hub, message="m"
    )
    assert url == "https://huggingface.co/datasets/me/promptcot"
    (create, created), (upload, uploaded) = hub.calls
    assert create == "create_repo" and created["repo_type"] == "dataset" and created["private"]
    assert upload == "upload_folder" and uploaded["repo_id"] == "me/promptcot"
    assert uploaded["repo_type"] == "dataset"
    assert Path(uploaded["folder_path"]) == tmp_path / "hf"
    assert (Path(uploaded["folder_path"]) / "README.md").exists()
    with pytest.raises(ValueError, match="local folder"):
        push_to_hub(RunDir("s3://bucket/x"), "me/x", private=False, api=hub, message="m")


@pytest.mark.integration  # talks HTTP to the moto S3 server fixture on 127.0.0.1 (no Ray)
def test_an_s3_run_exports_into_the_bucket(run_root, s3_env):
    uri = f"s3://{s3_env['bucket']}/runs/r1"
    s3 = RunDir(uri)
    for path in sorted(run_root.rglob("*")):
        if path.is_file():
            s3.write_bytes(path.relative_to(run_root).as_posix(), path.read_bytes())
    dest = f"s3://{s3_env['bucket']}/exports/verl"
    summary = export_run(uri, "verl", dest)
    out = RunDir(dest)
    manifest = out.read_json("export.json")
    assert manifest["rows"] == summary.rows == 2 and manifest["run_dir"] == uri
    rows = out.read_table("data").to_pylist()
    assert sorted(r["extra_info"]["id"] for r in rows) == sorted(confident(run_root))
    assert sorted(manifest["ids"]) == sorted(confident(run_root))
    assert out.read_text("README.md").startswith("---\n")


def test_the_card_funnel_takes_a_round_missing_from_the_ledger_from_its_stats(tmp_path):
    from promptcot_ray import layout
    from promptcot_ray.export.card import funnel

    run = RunDir(str(tmp_path))
    total = StageRecord(job="synthesize", stage="total", rows_in=40, rows_out=10)
    total.extra = {"round": 0}
    append_records(run, [total])
    # round 0's stats disagree with its ledger line: the ledger wins; round 1 has stats only
    run.write_json(layout.round_part(0, "stats.json"), {"total": {"rows_in": 1, "rows_out": 1}})
    run.write_json(layout.round_part(1, "stats.json"), {"total": {"rows_in": 20, "rows_out": 4}})
    run.write_json(layout.round_part(2, "stats.json"), {})  # a round without totals: left out
    (tmp_path / "synthesis" / "not-a-round").mkdir()
    assert funnel(run) == [
        {"round": 0, "combinations": 40, "accepted": 10, "accept_rate": 0.25},
        {"round": 1, "combinations": 20, "accepted": 4, "accept_rate": 0.2},
    ]
