"""Bad inputs as a new user types them, across every command: each ends in exit 2 with one
line naming the key, column or path, no traceback, and nothing written or lost in the run
directory. Every case fails before Ray starts (preflight), so the table runs in seconds:
a case that reached Ray fails the test (`connected` is replaced by a tripwire)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from promptcot_ray.cli import app

REPO = Path(__file__).resolve().parents[2]
CONFIGS = REPO / "jobs" / "configs"
runner = CliRunner()


def _fake_model(folder: Path, *, config: bool = True, tokenizer: bool = True) -> Path:
    """The files preflight looks for (it never loads weights)."""
    folder.mkdir(parents=True, exist_ok=True)
    if config:
        (folder / "config.json").write_text("{}")
    if tokenizer:
        (folder / "tokenizer.json").write_text("{}")
    return folder


@pytest.fixture
def world(tmp_path, monkeypatch):
    """Input files good and bad, a fake model, and a run directory holding earlier work."""
    monkeypatch.chdir(REPO)  # the shipped configs name tests/data/... relative to the repo

    def tripwire(*args, **kwargs):
        raise AssertionError("reached Ray: this case was not refused by preflight")

    monkeypatch.setattr("promptcot_ray.ray_runtime.connected", tripwire)
    monkeypatch.delenv("PROMPTCOT_TEST_KEY", raising=False)
    w = {"tmp": tmp_path, "model": _fake_model(tmp_path / "model")}
    _fake_model(tmp_path / "no-config", config=False)
    _fake_model(tmp_path / "no-tokenizer", tokenizer=False)
    (tmp_path / "a-file").write_text("not a folder")
    (tmp_path / "empty.jsonl").write_text("")
    (tmp_path / "empty-dir").mkdir()
    (tmp_path / "questions.jsonl").write_text('{"question": "What is 1+1?", "level": "AMC"}\n')
    pq.write_table(pa.table({"text": ["1+1?"], "answer": ["2"]}), tmp_path / "seeds.parquet")
    (tmp_path / "no-answer.jsonl").write_text('{"problem": "1+1?", "solution": "2"}\n')
    (tmp_path / "sft.jsonl").write_text('{"prompt": "1+1?", "response": "2"}\n')
    (tmp_path / "lists.jsonl").write_text('{"ideas": ["a", "b"]}\n')
    run = tmp_path / "run"
    (run / "synthesis/round-0/results").mkdir(parents=True)
    (run / "synthesis/round-0/results/part-00000.parquet").write_bytes(b"earlier results")
    (run / "ledger.jsonl").write_text('{"job": "synthesize"}\n')
    w["run"] = run
    return w


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def _job(job: str, config: str, *sets: str) -> list[str]:
    return [job, "--config", str(CONFIGS / config), *[a for s in sets for a in ("--set", s)]]


M, T = "{model}", "{tmp}"  # filled per test


def syn(*sets: str) -> list[str]:
    models = ("generator.model=" + M, "judges.0.llm.model=" + M, "judges.1.llm.model=" + M)
    return _job("synthesize", "local.yaml", *models, *sets)


def con(*sets: str) -> list[str]:
    return _job("concepts", "concepts-local.yaml", "extractor.model=" + M, *sets)


def qua(*sets: str) -> list[str]:
    return _job("quality", "quality-local.yaml", *sets)


def tra(*sets: str) -> list[str]:
    return _job("train", "train-local.yaml", *sets)


def pipe(*sets: str) -> list[str]:
    return ["pipeline", "--config", f"{T}/pipeline.yaml", *[a for s in sets for a in ("--set", s)]]


SFT, QUESTIONS = f"data.source={T}/sft.jsonl", f"{T}/questions.jsonl"
CASES = {
    # synthesize
    "missing model path": (
        syn(f"generator.model={T}/nope"),
        ["generator.model", "/nope", "nothing there"],
    ),
    "folder without config.json": (
        syn(f"generator.model={T}/no-config"),
        ["generator.model", "no-config", "no config.json"],
    ),
    "folder without tokenizer": (
        syn(f"judges.1.llm.model={T}/no-tokenizer"),
        ["judges.1.llm.model", "no tokenizer"],
    ),
    "model is a file": (
        syn(f"judges.0.llm.model={T}/a-file"),
        ["judges.0.llm.model", "a-file", "is a file"],
    ),
    "relative model path not built yet": (
        syn("judges.0.llm.model=.cache/not-built-yet"),
        ["judges.0.llm.model", ".cache/not-built-yet", "nothing there"],
    ),
    "run: model nobody trained": (
        syn("generator.model=run:models/gen/final"),
        ["generator.model", "models/gen/final", "train it first"],
    ),
    "pool from a run without concepts": (
        syn("pool.source=run"),
        ["pool.source", "concepts/pool", "run the concepts job first"],
    ),
    "missing concept-list file": (
        syn(f"pool.source={T}/lists-nope.jsonl"),
        ["pool.source", "lists-nope.jsonl"],
    ),
    "concept-list file without concepts": (
        syn(f"pool.source={T}/lists.jsonl"),
        ["pool.source", "'concepts'", "columns found: ['ideas']"],
    ),
    "api_key_env unset": (
        syn(
            "judges.0.llm.engine=openai",
            "judges.0.llm.base_url=http://127.0.0.1:9/v1",
            "judges.0.llm.api_key_env=PROMPTCOT_TEST_KEY",
        ),
        ["judges.0.llm.api_key_env", "PROMPTCOT_TEST_KEY", "unset"],
    ),
    "misspelled key": (syn("generator.temprature=0.5"), ["generator.temprature"]),
    "run_dir is a file": (
        syn(f"storage.run_dir={T}/a-file"),
        ["storage.run_dir", "a-file", "is a file"],
    ),
    "unknown level": (syn("combinations.levels=[Olympiad9]"), ["levels", "Olympiad9"]),
    "missing config file": (["synthesize", "--config", f"{T}/nope.yaml"], ["nope.yaml"]),
    # concepts
    "missing seeds file": (
        con(f"seeds.path={T}/s.jsonl"),
        ["seeds.path", "s.jsonl", "nothing at"],
    ),
    "seeds without the problem column": (
        con(f"seeds.path={QUESTIONS}"),
        ["seeds.path", "no column 'problem'", "found: ['question', 'level']", "problem_column"],
    ),
    "seeds Parquet without the column": (
        con(f"seeds.path={T}/seeds.parquet"),
        ["seeds.path", "seeds.parquet", "columns found: ['text', 'answer']"],
    ),
    "empty seeds file": (
        con(f"seeds.path={T}/empty.jsonl"),
        ["seeds.path", "empty.jsonl", "is empty"],
    ),
    "seeds folder with no data files": (
        con(f"seeds.path={T}/empty-dir"),
        ["seeds.path", "no .parquet or .jsonl files"],
    ),
    "extractor model missing": (con(f"extractor.model={T}/gone"), ["extractor.model", "gone"]),
    # rationales
    "writer model not a model": (
        _job("rationales", "rationales-local.yaml", f"writer.model={T}/no-config"),
        ["writer.model", "no config.json"],
    ),
    "best_of_n without a scorer": (
        _job("rationales", "rationales-local.yaml", "writer.model=" + M, "best_of_n=2"),
        ["best_of_n=2", "scorer"],
    ),
    # quality
    "missing benchmark file": (
        qua(f"benchmarks.0.path={T}/math.jsonl"),
        ["benchmarks.0.path (math500)", "math.jsonl", "nothing at"],
    ),
    "benchmark without the problem column": (
        qua(f"benchmarks.1.path={QUESTIONS}"),
        ["benchmarks.1.path (aime2024)", "no column 'problem'", "['question', 'level']"],
    ),
    "benchmark path is a folder": (
        qua(f"benchmarks.2.path={T}/empty-dir"),
        ["benchmarks.2.path (gsm8k)", "is a folder"],
    ),
    "empty benchmark file": (
        qua(f"benchmarks.0.path={T}/empty.jsonl"),
        ["benchmarks.0.path (math500)", "is empty"],
    ),
    # train
    "base model missing": (tra(f"base_model={T}/gone", SFT), ["base_model", "gone"]),
    "training rows without the completion column": (
        tra("base_model=" + M, SFT),
        ["data.source", "no column 'completion'", "['prompt', 'response']", "completion_column"],
    ),
    "training data the run does not have": (
        tra("base_model=" + M),
        ["data.source", "rationales/data", "nothing at"],
    ),
    "empty training file": (
        tra("base_model=" + M, f"data.source={T}/empty.jsonl"),
        ["data.source", "is empty"],
    ),
    "base model from a run that has none": (
        tra("base_model=run:models/x/final", SFT),
        ["base_model", "models/x/final", "train it first"],
    ),
    # distill
    "problems file without the problem column": (
        _job("distill", "distill-local.yaml", "teacher.model=" + M, f"problems={QUESTIONS}"),
        ["problems", "no column 'problem'", "['question', 'level']"],
    ),
    "teacher without tokenizer": (
        _job("distill", "distill-local.yaml", f"teacher.model={T}/no-tokenizer"),
        ["teacher.model", "no tokenizer"],
    ),
    # evaluate
    "eval set without the answer column": (
        _job(
            "evaluate",
            "evaluate-local.yaml",
            "model.model=" + M,
            f"benchmarks.3.path={T}/no-answer.jsonl",
        ),
        ["benchmarks.3.path (toy)", "no column 'answer'", "['problem', 'solution']"],
    ),
    "evaluated model missing": (
        _job("evaluate", "evaluate-local.yaml", f"model.model={T}/gone"),
        ["model.model", "gone"],
    ),
    # pipeline: run: models that an earlier stage trains pass; one nobody trains does not
    "pipeline stage with a model nobody trains": (
        pipe('distill.set={teacher.model: "run:models/nobody/final"}'),
        ["distill: teacher.model", "models/nobody/final", "train it first"],
    ),
    "pipeline stage with a missing seeds file": (
        pipe(f"concepts.set={{extractor.model: {M}, seeds.path: {T}/s.jsonl}}"),
        ["concepts: seeds.path", "s.jsonl", "nothing at"],
    ),
    # other commands
    "make-tiny-model onto a file": (["make-tiny-model", f"{T}/a-file"], ["a-file", "is a file"]),
    "show-config of an unknown job": (["show-config", "nojob"], ["unknown job 'nojob'"]),
    "report of a folder that is no run": (["report", f"{T}/nothing-here"], ["nothing-here"]),
}
JOBS = ("synthesize", "concepts", "rationales", "quality", "train", "distill", "evaluate")


def _pipeline_config(w: dict) -> None:
    """The shipped pipeline config with every model the fake one."""
    text = (CONFIGS / "pipeline-local.yaml").read_text()
    text = text.replace(".cache/tiny-llama-formats", str(w["model"]))
    (w["tmp"] / "pipeline.yaml").write_text(text)


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_in_one_line_and_touches_nothing(case, world):
    args, expected = CASES[case]
    fill = {"{model}": str(world["model"]), "{tmp}": str(world["tmp"])}

    def filled(text: str) -> str:
        for key, value in fill.items():
            text = text.replace(key, value)
        return text

    _pipeline_config(world)
    run = world["run"]
    args = [filled(a) for a in args]
    if args[0] in (*JOBS, "pipeline"):  # the run dir holding earlier work; a case's own wins
        args[3:3] = ["--set", f"storage.run_dir={run}"]
    before = _snapshot(run)
    result = runner.invoke(app, args)
    output = result.output
    assert result.exit_code == 2, (case, result.exit_code, output, result.exception)
    assert "Traceback" not in output and not isinstance(result.exception, AssertionError)
    lines = [line for line in output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, output
    for text in expected:
        assert filled(text) in lines[0], (case, text, lines[0])
    assert _snapshot(run) == before  # nothing written, nothing lost
    leftovers = {p.name for p in world["tmp"].iterdir()}
    assert "nope" not in leftovers and "gone" not in leftovers


def test_table_covers_every_command():
    commands = {args[0] for args, _ in CASES.values()}
    assert len(CASES) >= 30
    assert {*JOBS, "pipeline", "make-tiny-model", "show-config", "report"} <= commands


def test_a_bug_keeps_its_traceback(world, monkeypatch):
    """Not a user error: the exception reaches the caller (a traceback), not a one-liner."""

    def broken(cfg):
        raise KeyError("a bug in preflight")

    monkeypatch.setattr("promptcot_ray.preflight.check_config", broken)
    args = _job("synthesize", "local.yaml", f"storage.run_dir={world['run']}")
    result = runner.invoke(app, args)
    assert result.exit_code == 1 and isinstance(result.exception, KeyError)
    assert "error:" not in result.output
