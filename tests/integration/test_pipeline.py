"""The whole method through `promptcot-ray pipeline` on the embedded default (test sizes),
rehearsed: every engine call is the rehearsal stand-in (the engines are each job's own
integration test's subject, and the README's command runs them all for real), everything
else is the real pipeline: stage order and hand-offs, Ray Data, DeepSpeed trainings, the
report, and resume after a SIGKILL mid-pipeline.

One run serves every test: it is killed in synthesize-1 (a middle stage, its first result
file written) and re-run as a user would, so the run directory the other tests read is the
resumed one. That the resumed ids equal an uninterrupted run's is checked where it is cheap
(test_rehearsal.py, test_synthesize.py); here every combination must be decided exactly
once and every stage complete.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from html.parser import HTMLParser
from pathlib import Path

import pytest
import yaml

from promptcot_ray.catalog import check_run
from promptcot_ray.ledger import read_ledger
from promptcot_ray.storage import RunDir

from .helpers import REPO

pytestmark = [pytest.mark.integration, pytest.mark.slow]

PIPELINE_CONFIG = REPO / "jobs" / "configs" / "pipeline-local.yaml"
SHIPPED_MODEL = ".cache/tiny-llama-formats"
# Smaller than the README's run: the same stages, fewer rows and engine tokens.
TEST_SETTINGS = {
    # enough result files that the kill lands mid-round even with instant engines
    "synthesize": {
        "combinations.num_combinations": 240,
        "combinations.temperature": 2.0,  # a flat sampler: fewer duplicate combinations
        "checkpoint_rows": 4,
    },
    "train_generator": {"num_workers": 1},  # ZeRO-2 over two workers: test_train's subject
    # two samples: a lone valid answer may label (strict majority of one), a 1-1 split may not
    "distill": {"samples_per_problem": 2, "min_valid_samples": 1, "teacher.max_tokens": 128},
    "evaluate": {"runs": 1, "difficulty": False, "model.max_tokens": 96},
}
# the stages whose model is not set by the pipeline itself (generators, student: run models)
MODEL_KEYS = {
    "concepts": "extractor.model",
    "rationales": "writer.model",
    "distill": "teacher.model",
}


def _test_config(tmp: Path, model: Path, run_dir: Path) -> Path:
    """The shipped pipeline config with the session's format model and test sizes."""
    text = PIPELINE_CONFIG.read_text().replace(SHIPPED_MODEL, str(model))
    data = yaml.safe_load(text)
    data["storage"]["run_dir"] = str(run_dir)
    for stage, settings in TEST_SETTINGS.items():
        data[stage].setdefault("set", {}).update(settings)
    for stage, key in MODEL_KEYS.items():
        data[stage].setdefault("set", {})[key] = str(model)
    # one judge (the shipped two share one model): an engine start less per round in CI;
    # two judges voting is test_synthesize's subject
    judge = yaml.safe_load((REPO / "jobs" / "configs" / "local.yaml").read_text())["judges"][0]
    judge["llm"]["model"] = str(model)
    synth = data["synthesize"]["set"]
    data["synthesize"]["set"] = {k: v for k, v in synth.items() if not k.startswith("judges.")}
    data["synthesize"]["set"]["judges"] = [judge]
    data["rehearse"] = True
    path = tmp / "pipeline.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _cli(config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "promptcot_ray.cli", "pipeline", "--config", str(config), *extra]


def _ids(run_dir: Path, rel: str) -> list[str]:
    table = RunDir(str(run_dir)).read_table(rel, columns=["id"])
    return sorted(table.column("id").to_pylist()) if table is not None else []


OUTPUTS = [
    "concepts/extracted",
    "rationales/data",
    "synthesis/round-0/accepted",
    "synthesis/round-0/rejected",
    "pipeline/generator-data/round-1",
    "synthesis/round-1/accepted",
    "synthesis/round-1/rejected",
    "problems",
    "problems-removed",
    "distill/labels",
    "distill/sft",
]
# completion markers the stages write, and outputs that hold rows even on the tiny model
COMPLETE = [
    "concepts/pool",
    "rationales",
    "synthesis/round-0",
    "pipeline/generator-data/round-1",
    "synthesis/round-1",
    "problems",
    "problems-removed",
    "distill",
]
NON_EMPTY = [
    "concepts/extracted",
    "rationales/data",
    "synthesis/round-0/rejected",
    "synthesis/round-1/rejected",
    "pipeline/generator-data/round-1",
]


@pytest.fixture(scope="module")
def pipeline_runs(format_model_path, tmp_path_factory):
    """The pipeline killed (SIGKILL) mid synthesize-1, then the same command run again."""
    tmp = tmp_path_factory.mktemp("pipeline")
    run_dir = tmp / "run"
    config = _test_config(tmp, format_model_path, run_dir)
    results = "synthesis/round-1/results"
    with open(tmp / "killed.log", "w") as log:
        proc = subprocess.Popen(_cli(config), cwd=REPO, stdout=log, stderr=log)
        deadline = time.time() + 1800
        while time.time() < deadline and proc.poll() is None:
            if RunDir(str(run_dir)).list_files(results, ".parquet"):
                break
            time.sleep(0.1)
        assert proc.poll() is None, (tmp / "killed.log").read_text()[-4000:]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    killed_complete = RunDir(str(run_dir)).is_complete("synthesis/round-1")
    done = subprocess.run(_cli(config), cwd=REPO, capture_output=True, text=True, timeout=1800)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-4000:]
    listing = subprocess.run(
        _cli(config, "--list"), cwd=REPO, capture_output=True, text=True, timeout=120
    )
    return {
        "reference": run_dir,
        "killed_complete": killed_complete,
        "stdout": done.stdout,
        "log": done.stderr + done.stdout,
        "listing": listing.stdout,
    }


def test_every_stage_runs_and_leaves_its_outputs(pipeline_runs):
    reference = pipeline_runs["reference"]
    run = RunDir(str(reference))
    for rel in COMPLETE:
        assert run.is_complete(rel), rel
    for rel in NON_EMPTY:
        assert _ids(reference, rel), rel
    for name in ("generator", "generator-round-1", "student"):
        assert run.is_complete(f"models/{name}/final"), name
    assert run.exists("eval/student/summary.json")
    # round 1's generator started from round 0's and trained on round 0's accepted rows
    marker = run.read_json("models/generator-round-1/final/_SUCCESS.json")
    assert marker["base_model"] == "run:models/generator/final"
    data = run.read_table("pipeline/generator-data/round-1")
    accepted0 = _ids(reference, "synthesis/round-0/accepted")
    from_accepted = [
        p
        for p, s in zip(data["parent_ids"].to_pylist(), data["source"].to_pylist(), strict=True)
        if s.startswith("synthesis/")
    ]
    assert sorted(p[0] for p in from_accepted) == accepted0
    # every stage listed as complete afterwards (report is rebuilt on every run)
    states = dict(
        line.split(None, 1) for line in pipeline_runs["listing"].splitlines() if line.strip()
    )
    assert {"concepts", "synthesize-1", "train-student", "evaluate"} <= set(states)
    assert {k: v for k, v in states.items() if k != "report"} == {
        k: "complete" for k in states if k != "report"
    }, pipeline_runs["listing"]


def test_every_table_the_pipeline_wrote_has_the_schema_its_catalog_entry_declares(pipeline_runs):
    found = check_run(RunDir(str(pipeline_runs["reference"])))
    problems = [f"{f.rel}: {p}" for f in found for p in f.problems]
    assert not problems, "\n".join(problems)
    names = {(f.dataset.name, f.key) for f in found}
    for rnd in (0, 1):
        assert {(n, rnd) for n in ("combinations", "results", "accepted", "rejected")} <= names
    # (problems-removed holds files only when a gate removed something)
    expected = {"seeds", "extracted concepts", "concept pool", "rationales", "problems"}
    expected |= {"teacher solutions", "pseudo-labels", "distillation SFT"}
    assert expected <= {name for name, _ in names}
    assert {("generator data", 1), ("eval samples", "student")} <= names
    # a finished pipeline committed everything it wrote (results: the round's marker)
    assert [f.rel for f in found if not f.complete] == []


def test_ledger_and_summary_show_the_accept_rate_per_round(pipeline_runs):
    reference = pipeline_runs["reference"]
    lines = [x for x in read_ledger(RunDir(str(reference))) if x["stage"] == "accept_rate"]
    assert sorted(x["extra"]["round"] for x in lines) == [0, 1]
    for line in lines:
        k = line["extra"]["round"]
        accepted = len(_ids(reference, f"synthesis/round-{k}/accepted"))
        assert line["rows_out"] == accepted
        assert line["rows_in"] == accepted + len(_ids(reference, f"synthesis/round-{k}/rejected"))
        assert f"round {k}: {accepted} of {line['rows_in']} combinations accepted" in re.sub(
            r"\s+", " ", pipeline_runs["stdout"]
        )


class _Images(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs)["src"])


def test_report_is_written_and_every_image_is_a_png(pipeline_runs):
    index = pipeline_runs["reference"] / "report" / "index.html"
    parser = _Images()
    parser.feed(index.read_text())
    assert len(parser.sources) >= 5
    for src in parser.sources:
        image = index.parent / src
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", src


def test_killed_mid_pipeline_resumes_at_that_stage_deciding_each_combination_once(
    pipeline_runs,
):
    """Killed in synthesize-1, re-run: the finished stages are skipped, the killed one
    resumes inside (its written results are not redone), every combination of the round is
    decided exactly once, and every later stage runs on the resumed round."""
    assert not pipeline_runs["killed_complete"]
    log = pipeline_runs["log"]
    for stage in (
        "concepts",
        "rationales",
        "train-generator",
        "synthesize-0",
        "train-generator-round-1",
    ):
        assert re.search(rf"\] {re.escape(stage)}: complete, skipped", log), stage
    assert re.search(r"\] synthesize-1: running", log)
    found = re.search(r"\((\d+)\s+done\s+by\s+an\s+earlier\s+run\)", log)
    assert found and int(found.group(1)) > 0, log[-3000:]
    run_dir = pipeline_runs["reference"]
    outcomes = _ids_of(run_dir, "synthesis/round-1/accepted", "combination_id")
    outcomes += _ids_of(run_dir, "synthesis/round-1/rejected", "combination_id")
    assert len(outcomes) == len(set(outcomes))  # no combination decided twice
    assert sorted(outcomes) == _ids_of(run_dir, "synthesis/round-1/combinations", "id")  # none lost
    for rel in OUTPUTS:  # every later stage ran on the resumed round
        assert RunDir(str(run_dir)).exists(rel), rel


def _ids_of(run_dir: Path, rel: str, column: str) -> list[str]:
    table = RunDir(str(run_dir)).read_table(rel, columns=[column])
    return sorted(table.column(column).to_pylist()) if table is not None else []
