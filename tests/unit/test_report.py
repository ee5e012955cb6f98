"""The run report: numbers on the page equal the rows written, and it renders in a browser.

The run directory is made with the jobs' own code where it exists (synthesize's finalize and
ledger records, the quality job's row builders, the distill and evaluate schemas and summary),
so the report reads exactly what the jobs write. The browser check renders the page in
headless Chromium (Debian's `chromium` package): the screenshot must not be blank, and a
test-only copy of the page with a small script reports each image's decoded width. Every
referenced file is also checked to exist and to be a valid PNG by parsing the HTML, which
runs even where Chromium is missing (then the browser part is skipped, or fails under CI).
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from collections import Counter
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image
from typer.testing import CliRunner

from promptcot_ray import records as R
from promptcot_ray.cli import app
from promptcot_ray.concepts.pool import make_pool
from promptcot_ray.concepts.store import write_pool
from promptcot_ray.config import LLMConfig, StorageConfig
from promptcot_ray.distill.job import LABELS_DIR, SOLUTIONS_DIR, STAGE_SOLVE
from promptcot_ray.distill.labeling import LABEL_SCHEMA, STAGE_LABEL
from promptcot_ray.distill.labels import REASON_LOW_CONFIDENCE
from promptcot_ray.evaluate.summary import summarize
from promptcot_ray.ledger import StageRecord, append_records
from promptcot_ray.quality.dedup import Decision
from promptcot_ray.quality.outputs import (
    KEPT_DIR,
    REMOVED_DIR,
    kept_rows,
    removed_rows,
)
from promptcot_ray.report import build_report
from promptcot_ray.report.job import NoRunDirectory
from promptcot_ray.solve.solutions import REASON_NO_BOXED, REASON_TRUNCATED
from promptcot_ray.storage import RunDir
from promptcot_ray.synthesis.combinations import COMBINATION_SCHEMA
from promptcot_ray.synthesis.config import JudgeConfig, SynthesizeConfig
from promptcot_ray.synthesis.job import ledger_records
from promptcot_ray.synthesis.outputs import finalize
from promptcot_ray.synthesis.stages import JUDGE_FIELDS, judge_column
from promptcot_ray.synthesis.verdict import DecideVerdict
from promptcot_ray.table_schemas import results_schema, solution_schema
from promptcot_ray.train.loop import CURVE_COLUMNS, CURVE_FILE

P, A, B = "perfect", "acceptable", "bad"
UNPARSED = "unparsed"  # the generator's reply did not parse: no judge rates it
JUDGES = ("a", "b")
CONCEPTS = [f"concept {i}: a foundational idea of olympiad geometry" for i in range(12)]
# Per round: duplicate combinations, then one entry per unique combination: the draft did not
# parse, or the two judges' verdicts (None: that judge's reply was unparseable).
ROUNDS = {
    0: (2, [UNPARSED, UNPARSED, (P, P), (P, P), (P, P), (P, A), (B, P), (A, A)]),
    1: (0, [UNPARSED, (P, P), (P, P), (P, B), (A, P), (P, None)]),
}
# Quality gates: (round, index among that round's accepted rows) -> removal reason.
REMOVED = {(0, 1): R.REASON_NEAR_DUPLICATE, (1, 0): R.REASON_CONTAMINATED}
LEVELS = ("AIME", "USAMO", "AMC12")


# --- building a run directory with the jobs' own schemas and code --------------------------
def _combination(rnd: int, i: int, duplicate: bool) -> dict:
    ids = [(i + k) % len(CONCEPTS) for k in range(3)]
    return {
        **R.lineage(f"c{rnd}-{i}", [], R.STAGE_COMBINATIONS, None, None, 0, i),
        "combination_index": i,
        "concept_ids": ids,
        "concepts": [CONCEPTS[c] for c in ids],
        "level": LEVELS[i % len(LEVELS)],
        "pool_version": "pool-v",
        R.STATUS: R.STATUS_FILTERED if duplicate else R.STATUS_OK,
        R.REASON: R.REASON_DUPLICATE_COMBINATION if duplicate else None,
    }


def _ratings(verdict: str) -> str:
    """Five ratings consistent with the verdict; `format` is always perfect (constant)."""
    return json.dumps({c: P if c == "format" else verdict for c in R.CRITERIA}, sort_keys=True)


def _result(combo: dict, outcome, rnd: int) -> dict:
    parsed = outcome != UNPARSED
    words = " ".join(["word"] * (20 + 7 * combo["combination_index"]))
    row = {
        "combination_id": combo[R.ID],
        "sampler_seed": 0,
        **{k: combo[k] for k in ("combination_index", "concepts", "level", "pool_version")},
        "draft_id": f"d{rnd}-{combo['combination_index']}",
        "generator_model": "gen",
        "generator_prompt_version": "generator-v1",
        "generation_seed": 1,
        "draft_text": "reply",
        "rationale": "a rationale" if parsed else None,
        "problem": f"Prove that {words}." if parsed else None,
        "draft_tokens_in": 100,
        "draft_tokens_out": 60,
        "draft_status": R.STATUS_OK if parsed else R.STATUS_FILTERED,
        "draft_reason": None if parsed else R.REASON_DRAFT_MISSING_BOTH,
        "draft_error": None,
    }
    for j, name in enumerate(JUDGES):
        row.update({judge_column(j, f): None for f in JUDGE_FIELDS})
        if not parsed:
            continue
        verdict = outcome[j]
        row.update(
            {
                judge_column(j, "id"): f"j{rnd}-{combo['combination_index']}-{name}",
                judge_column(j, "model"): f"judge-{name}",
                judge_column(j, "verdict"): verdict,
                judge_column(j, "ratings"): _ratings(verdict) if verdict else "{}",
                judge_column(j, "status"): R.STATUS_OK if verdict else R.STATUS_FILTERED,
                judge_column(j, "reason"): None if verdict else R.REASON_JUDGE_UNPARSEABLE,
                judge_column(j, "tokens_in"): 200,
                judge_column(j, "tokens_out"): 30,
            }
        )
    return DecideVerdict(JUDGES, "only_perfect")(row)


def _synthesis_round(run: RunDir, rnd: int, cfg: SynthesizeConfig) -> None:
    dups, outcomes = ROUNDS[rnd]
    combos = [_combination(rnd, i, i < dups) for i in range(dups + len(outcomes))]
    base = f"synthesis/round-{rnd}"
    combos_table = pa.Table.from_pylist(combos, schema=COMBINATION_SCHEMA)
    run.write_table(f"{base}/combinations/part-00000.parquet", combos_table)
    run.mark_complete(f"{base}/combinations", {"rows": len(combos)})
    results = [_result(c, o, rnd) for c, o in zip(combos[dups:], outcomes, strict=True)]
    schema = results_schema(len(JUDGES))
    run.write_table(f"{base}/results/part-0.parquet", pa.Table.from_pylist(results, schema))
    judges = tuple(JudgeConfig(name=n, llm=LLMConfig(model=f"judge-{n}")) for n in JUDGES)
    rcfg = cfg.model_copy(update={"round": rnd, "judges": judges})
    counts = finalize(run, base, judges, rnd, combos_table)
    records = ledger_records(rcfg, counts, seconds=12.5 + rnd)
    append_records(run, records)
    run.write_json(f"{base}/stats.json", {r.stage: r.__dict__ for r in records})
    run.mark_complete(base, {"accepted": counts.accepted})


def _quality(run: RunDir) -> None:
    accepted = run.read_table("synthesis/round-0/accepted")
    accepted = pa.concat_tables([accepted, run.read_table("synthesis/round-1/accepted")])
    decisions = {}
    for (rnd, index), reason in REMOVED.items():
        ids = [r[R.ID] for r in accepted.to_pylist() if r["round"] == rnd]
        decisions[sorted(ids)[index]] = Decision(reason, "m", "toy", jaccard=0.9)
    removed = pa.array(sorted(decisions), pa.string())
    run.write_table(f"{KEPT_DIR}/part-0.parquet", kept_rows(accepted, removed))
    run.write_table(f"{REMOVED_DIR}/part-0.parquet", removed_rows(accepted, decisions, removed))
    for rel in (KEPT_DIR, REMOVED_DIR):
        run.mark_complete(rel, {})
    reasons = dict(Counter(d.reason for d in decisions.values()))
    kept = accepted.num_rows - len(decisions)
    append_records(
        run,
        [
            StageRecord(
                job="quality",
                stage=R.STAGE_QUALITY,
                rows_in=accepted.num_rows,
                rows_out=kept,
                rejected=reasons,
            )
        ],
    )


def _solution(problem_id: str, sample: int, reason: str | None, tokens: int) -> dict:
    return {
        **R.lineage(f"s-{problem_id}-{sample}", [problem_id], STAGE_SOLVE, "t", "v", 1, sample),
        "problem_id": problem_id,
        "problem": "p",
        "text": "<think>x</think> \\boxed{1}",
        "answer": None if reason else "1",
        "final_answer": "1",
        "finish_reason": "length" if reason == REASON_TRUNCATED else "stop",
        "think_opened_by_prompt": False,
        "tokens_in": 50,
        "tokens_out": tokens,
        R.STATUS: R.STATUS_FILTERED if reason else R.STATUS_OK,
        R.REASON: reason,
        R.ERROR: None,
    }


def _distill(run: RunDir) -> dict[str, tuple[int, str | None]]:
    """Four samples per kept problem; labels: the first of each round kept, the rest low."""
    kept = run.read_table(KEPT_DIR).to_pylist()
    outcomes, solutions, labels = {}, [], []
    for row in sorted(kept, key=lambda r: (r["round"], r[R.ID])):
        pid = row[R.ID]
        first = all(o is None or o[0] != row["round"] for o in outcomes.values())
        outcomes[pid] = (row["round"], None if first else REASON_LOW_CONFIDENCE)
        reasons = [None, None, REASON_NO_BOXED, REASON_TRUNCATED]
        solutions += [_solution(pid, s, r, 300 + 40 * s) for s, r in enumerate(reasons)]
        reason = outcomes[pid][1]
        labels.append(
            {
                **R.lineage(f"l-{pid}", [pid], STAGE_LABEL, "t", "v", 1, 0),
                "problem_id": pid,
                "problem": row["problem"],
                "label": None if reason else "1",
                "confidence": 1.0 if reason is None else 0.5,
                "valid_solutions": 2,
                "samples": 4,
                "answer_groups": 1 if reason is None else 2,
                R.STATUS: R.STATUS_FILTERED if reason else R.STATUS_OK,
                R.REASON: reason,
                R.ERROR: None,
            }
        )
    run.write_table(
        f"{SOLUTIONS_DIR}/part-0.parquet", pa.Table.from_pylist(solutions, solution_schema())
    )
    run.write_table(f"{LABELS_DIR}/part-0.parquet", pa.Table.from_pylist(labels, LABEL_SCHEMA))
    bad = Counter(s[R.REASON] for s in solutions if s[R.REASON])
    valid = len(solutions) - sum(bad.values())
    low = Counter(lb[R.REASON] for lb in labels if lb[R.REASON])
    append_records(
        run,
        [
            StageRecord(
                job="distill",
                stage=STAGE_SOLVE,
                rows_in=len(solutions),
                rows_out=valid,
                rejected=dict(bad),
                tokens_in=50,
                tokens_out=900,
                seconds=40.0,
            ),
            StageRecord(
                job="distill",
                stage=STAGE_LABEL,
                rows_in=len(labels),
                rows_out=len(labels) - low.total(),
                rejected=dict(low),
            ),
        ],
    )
    return outcomes


def _train_and_eval(run: RunDir) -> None:
    lines = [",".join(CURVE_COLUMNS)]
    for step in range(1, 21):
        lines.append(f"{step},0,{3.0 / step**0.5:.4f},1e-05,4096,0.5,8192.0")
    run.write_text(f"models/generator/{CURVE_FILE}", "\n".join(lines) + "\n")
    graded = [
        {
            "benchmark": bench,
            "problem_id": f"{bench}-{i}",
            "sample_index": run_index,
            "correct": (i + run_index) % 3 == 0,
            "grade_status": "ok",
            "tokens_out": 500,
            "status": "ok",
            "finish_reason": "stop",
        }
        for bench in ("gsm8k", "toy")
        for i in range(3)
        for run_index in range(2)
    ]
    benchmarks = summarize(graded)
    summary = {"model": "student", "runs": 2, "benchmarks": benchmarks, "difficulty": None}
    run.write_json("eval/student/summary.json", summary)
    append_records(
        run,
        [
            StageRecord(
                job="train",
                stage="train:generator",
                rows_in=40,
                rows_out=40,
                tokens_in=81920,
                seconds=30.0,
            ),
            StageRecord(
                job="evaluate",
                stage="evaluate_solve:student",
                rows_in=12,
                rows_out=12,
                tokens_out=6000,
                seconds=20.0,
            ),
        ],
    )


def _pool(run: RunDir) -> None:
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(len(CONCEPTS), 8)).astype(np.float32)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    cooc = np.zeros((len(CONCEPTS), len(CONCEPTS)), dtype=np.int64)
    write_pool(run, make_pool(CONCEPTS, np.ones(len(CONCEPTS), np.int64), emb, cooc))


@pytest.fixture(scope="module")
def full_run(tmp_path_factory) -> dict:
    """A run with every job's outputs, and the report built from it."""
    root = tmp_path_factory.mktemp("run")
    run = RunDir(str(root))
    cfg = SynthesizeConfig(
        storage=StorageConfig(run_dir=str(root)),
        generator=LLMConfig(model="gen"),
        judges=(JudgeConfig(name="a", llm=LLMConfig(model="judge-a")),),
    )
    _pool(run)
    for rnd in ROUNDS:
        _synthesis_round(run, rnd, cfg)
    _quality(run)
    labels = _distill(run)
    _train_and_eval(run)
    page = build_report(str(root))
    return {"root": root, "page": Path(page), "labels": labels}


# --- reading the page back -----------------------------------------------------------------
class _Page(HTMLParser):
    """Tables by id (rows of cell texts), every <img src>, and whether a script is present."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self.images: list[str] = []
        self.scripts = 0
        self._table: str | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self._table = attrs.get("id")
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self.tables[self._table].append([])
        elif tag in ("td", "th"):
            self._cell = []
        elif tag == "img":
            self.images.append(attrs["src"])
        elif tag == "script":
            self.scripts += 1

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None and self._table:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)


def parse(page: Path) -> _Page:
    parser = _Page()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def rows_by_first_cell(table: list[list[str]]) -> dict[str, dict[str, str]]:
    header, *rows = table
    return {row[0]: dict(zip(header, row, strict=True)) for row in rows}


def number(text: str) -> int:
    return int(text.replace(",", ""))


# --- the numbers on the page -------------------------------------------------------------
def expected_funnel(labels: dict[str, tuple[int, str | None]]) -> dict[str, dict[str, int]]:
    """The funnel computed straight from the spec the run was written from."""
    out = {}
    for rnd, (dups, outcomes) in ROUNDS.items():
        parsed = [o for o in outcomes if o != UNPARSED]
        judged = [o for o in parsed if None not in o]
        accepted = sum(o == (P, P) for o in judged)
        removed = sum(1 for r, _ in REMOVED if r == rnd)
        out[f"round-{rnd}"] = {
            "combinations": dups + len(outcomes),
            "unique": len(outcomes),
            "parsed drafts": len(parsed),
            "judged": len(judged),
            "accepted": accepted,
            "after quality gates": accepted - removed,
            "distilled (label kept)": sum(
                1 for r, reason in labels.values() if r == rnd and not reason
            ),
        }
    return out


def test_funnel_and_accept_rate_equal_the_rows_written(full_run):
    page = parse(full_run["page"])
    funnel = rows_by_first_cell(page.tables["funnel"])
    expected = expected_funnel(full_run["labels"])
    assert set(funnel) == set(expected)
    for rnd, numbers in expected.items():
        for column, value in numbers.items():
            assert number(funnel[rnd][column]) == value, (rnd, column)
        rate = numbers["accepted"] / numbers["combinations"]
        assert funnel[rnd]["accept rate (of combinations)"] == f"{100 * rate:.1f}%"
        rate = numbers["accepted"] / numbers["parsed drafts"]
        assert funnel[rnd]["accept rate (of parsed)"] == f"{100 * rate:.1f}%"
    assert funnel["round-0"]["accept rate (of combinations)"] == "30.0%"  # 3 of 10


def test_kappa_matches_a_hand_computation(full_run):
    pairs = [o for _, outcomes in ROUNDS.values() for o in outcomes if o != UNPARSED]
    pairs = [o for o in pairs if None not in o]
    n = len(pairs)
    observed = sum(a == b for a, b in pairs) / n
    chance = (
        sum(sum(a == v for a, _ in pairs) * sum(b == v for _, b in pairs) for v in (P, A, B)) / n**2
    )
    expected = (observed - chance) / (1 - chance)
    # By hand: 10 pairs, 6 equal -> 0.6; a and b each 7 P, 2 A, 1 B -> 0.54; 0.06/0.46.
    assert n == 10 and abs(expected - 0.06 / 0.46) < 1e-12
    kappa = {row[1]: row for row in parse(full_run["page"]).tables["kappa"][1:]}
    verdict = kappa["verdict (perfect / acceptable / bad)"]
    assert verdict[0] == "a vs b" and number(verdict[2]) == n
    assert verdict[3] == f"{expected:.3f}"
    assert kappa["rating: format"][3] == "—"  # both judges always rated format perfect
    assert "undefined" in kappa["rating: format"][4]


def test_reasons_levels_coverage_and_ledger(full_run):
    page = parse(full_run["page"])
    reasons = {(r[0], r[1]): r for r in page.tables["reasons"][1:]}
    dup = reasons[("synthesis", R.REASON_DUPLICATE_COMBINATION)]
    assert number(dup[-1]) == ROUNDS[0][0]
    assert number(reasons[("quality gates", R.REASON_CONTAMINATED)][-1]) == 1
    assert number(reasons[("distill labels", REASON_LOW_CONFIDENCE)][-1]) == 1
    accepted = [
        run_row
        for rnd in ROUNDS
        for run_row in RunDir(str(full_run["root"]))
        .read_table(f"synthesis/round-{rnd}/accepted")
        .to_pylist()
    ]
    distinct = len({c for row in accepted for c in row["concepts"]})
    text = html.unescape(full_run["page"].read_text())
    assert f"{distinct} of the pool's {len(CONCEPTS)} concepts" in text
    ledger = page.tables["ledger"][1:]
    lines = RunDir(str(full_run["root"])).read_text("ledger.jsonl").splitlines()
    assert len(ledger) == len(lines) and all(row[-1] == "yes" for row in ledger)
    evals = page.tables["eval"][1:]
    assert {row[2] for row in evals} == {"gsm8k", "toy"}
    assert "No evaluation" not in text and "No training" not in text


def test_every_image_exists_and_is_a_valid_png(full_run):
    page = parse(full_run["page"])
    assert page.scripts == 0  # the page opens from disk with nothing to run
    assert "http://" not in full_run["page"].read_text()
    names = {Path(src).stem for src in page.images}
    expected = {"funnel", "reasons", "levels", "coverage", "lengths", "agreement_0", "loss"}
    assert names == expected | {"cost"}
    for src in page.images:
        path = full_run["page"].parent / src
        with Image.open(path) as image:
            image.verify()
        with Image.open(path) as image:
            assert image.format == "PNG" and image.width > 200 and image.height > 100


def test_a_run_with_only_synthesis_says_what_is_missing(tmp_path):
    run = RunDir(str(tmp_path))
    cfg = SynthesizeConfig(
        storage=StorageConfig(run_dir=str(tmp_path)),
        generator=LLMConfig(model="gen"),
        judges=(JudgeConfig(name="a", llm=LLMConfig(model="judge-a")),),
    )
    _synthesis_round(run, 0, cfg)
    text = Path(build_report(str(tmp_path))).read_text()
    for sentence in (
        "No quality gates in this run",
        "No distillation in this run",
        "No training in this run",
        "No evaluation in this run",
        "no concepts/pool in this run",
    ):
        assert sentence in text
    funnel = rows_by_first_cell(parse(tmp_path / "report/index.html").tables["funnel"])
    assert funnel["round-0"]["after quality gates"] == "—"


def test_cli_report_and_a_missing_run(tmp_path, full_run):
    result = CliRunner().invoke(app, ["report", str(full_run["root"])])
    assert result.exit_code == 0, result.output
    assert str(full_run["page"]) in result.output
    result = CliRunner().invoke(app, ["report", str(tmp_path / "nope")])
    assert result.exit_code == 2 and "no run directory" in result.output
    with pytest.raises(NoRunDirectory, match="none of a run's outputs"):
        build_report(str(tmp_path))


# --- the page in a real browser ----------------------------------------------------------
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
_CHROME_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]
_PROBE = (
    "<script>window.addEventListener('load', () => document.body.setAttribute('data-images',"
    " JSON.stringify([...document.images].map(i => [i.getAttribute('src'), i.naturalWidth]))))"
    "</script>"
)


def _chromium(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [CHROMIUM, *_CHROME_FLAGS, *args], capture_output=True, text=True, timeout=60, check=True
    )


def test_page_renders_in_headless_chromium(full_run, tmp_path):
    if CHROMIUM is None:
        missing = "Debian's chromium package is not installed (apt-get install -y chromium)"
        if os.environ.get("CI"):  # .ci/run installs it: a missing browser is a CI failure
            pytest.fail(missing)
        pytest.skip(missing)
    page = full_run["page"]
    shot = tmp_path / "screenshot.png"
    _chromium(f"--screenshot={shot}", "--window-size=1200,3000", page.as_uri())
    with Image.open(shot) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 24)
    assert len(colours) > 50, "the screenshot is (nearly) blank"
    # A test-only copy of the page with a probe script, next to it so relative paths resolve:
    # Chromium reports each image's decoded width (0 = it did not load).
    probe = page.parent / "_probe.html"
    probe.write_text(page.read_text().replace("</body>", _PROBE + "</body>"))
    try:
        dom = _chromium("--virtual-time-budget=5000", "--dump-dom", probe.as_uri()).stdout
    finally:
        probe.unlink()
    found = re.search(r'data-images="([^"]*)"', dom)
    assert found, dom[:500]
    images = json.loads(found.group(1).replace("&quot;", '"'))
    assert len(images) == len(parse(page).images)
    assert all(width > 0 for _, width in images), images


@pytest.mark.integration  # talks HTTP to the moto S3 server fixture on 127.0.0.1 (no Ray)
def test_report_of_an_s3_run_is_written_into_the_bucket(full_run, s3_env):
    uri = f"s3://{s3_env['bucket']}/runs/r1"
    s3 = RunDir(uri)
    root = full_run["root"]
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not rel.startswith("report/"):
            s3.write_bytes(rel, path.read_bytes())
    assert build_report(uri) == f"{uri}/report/index.html"
    text = s3.read_text("report/index.html")
    for src in re.findall(r'<img src="([^"]+)"', text):
        assert s3.read_bytes(f"report/{src}").startswith(b"\x89PNG\r\n\x1a\n")
    local = parse(full_run["page"]).tables["funnel"]
    page = _Page()
    page.feed(text)
    assert page.tables["funnel"] == local
