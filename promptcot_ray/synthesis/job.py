"""`synthesize`: combinations -> generator -> parse -> judges -> verdict, resumable.

One lazy Ray Data pipeline streams pending combinations through the generator and every
judge and writes id-keyed result files. A re-run skips combinations whose results exist, so
a killed job finishes with the same ids as one that never stopped. Ray must already be
connected (the CLI does that); this module never starts or stops it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from promptcot_ray import layout, stage_marker
from promptcot_ray import records as R
from promptcot_ray.config import config_hash, config_to_yaml
from promptcot_ray.ledger import StageRecord, append_records
from promptcot_ray.llm_stage import dataset_from_table, helper_cpus, write_rows
from promptcot_ray.model_paths import with_run_models
from promptcot_ray.resume import without_written
from promptcot_ray.storage import RunDir
from promptcot_ray.synthesis import combinations as combos_mod
from promptcot_ray.synthesis.config import SynthesizeConfig
from promptcot_ray.synthesis.outputs import OUTPUT_TABLES, RoundCounts, finalize
from promptcot_ray.synthesis.pool_source import resolve_pool
from promptcot_ray.table_schemas import results_schema

logger = logging.getLogger(__name__)

JOB = "synthesize"


class JobFailed(RuntimeError):
    """The job ran but its outcome is not acceptable (e.g. too many engine errors)."""


@dataclass
class RunSummary:
    """What a finished synthesize round produced and where it lies."""

    run_dir: str
    round_dir: str
    counts: RoundCounts
    seconds: float
    resumed_rows: int = 0
    outputs: dict[str, str] = field(default_factory=dict)


def round_dir_of(cfg: SynthesizeConfig) -> str:
    return layout.round_dir(cfg.round)


def freeze_config(run: RunDir, cfg: SynthesizeConfig, round_dir: str) -> None:
    """Save the resolved config in the round folder and as this job's entry in config.yaml."""
    import yaml

    run.write_text(f"{round_dir}/config.yaml", config_to_yaml(cfg))
    merged = yaml.safe_load(run.read_text("config.yaml")) if run.exists("config.yaml") else {}
    merged = merged or {}
    merged[f"{JOB}/round-{cfg.round}"] = yaml.safe_load(config_to_yaml(cfg))
    run.write_text("config.yaml", yaml.safe_dump(merged, sort_keys=False))


# what resume and finalize need of the combinations (not concept_ids, lineage, timestamps)
COMBINATION_READ_COLUMNS = [R.ID, R.SEED, R.SAMPLE_INDEX, "combination_index", "concepts"]
COMBINATION_READ_COLUMNS += ["level", "pool_version", R.STATUS, R.REASON]


def ensure_combinations(run: RunDir, round_dir: str, cfg: SynthesizeConfig, pool) -> pa.Table:
    """Sample the round's combinations once (one file per shard, written by the sampling
    tasks); every run then reads back the columns it needs, concurrently."""
    rel = f"{round_dir}/combinations"
    # shard_size only splits the work; it does not change which combinations are made
    key = config_hash(cfg.combinations.model_copy(update={"shard_size": 1})) + ":" + pool.version
    if run.is_complete(rel):
        stored = run.read_json(f"{rel}/_SUCCESS.json").get("key")
        if stored != key:
            raise JobFailed(
                f"{run.uri_of(rel)} was sampled with another combinations config or pool; "
                "use a new storage.run_dir or round, or restore the original settings"
            )
        return run.read_table(rel, COMBINATION_READ_COLUMNS)
    run.delete_dir(rel)  # shards of an interrupted sampling run (same names, same rows)
    rows = combos_mod.write_combinations(run, rel, pool, cfg.combinations)
    run.mark_complete(rel, {"key": key, "rows": rows})
    return run.read_table(rel, COMBINATION_READ_COLUMNS)


def check_engine_settings(run: RunDir, round_dir: str, cfg: SynthesizeConfig) -> None:
    """Refuse to mix results of different generator/judge settings in one round."""
    rel = f"{round_dir}/results/_SETTINGS.json"
    settings = {
        "generator": cfg.generator.output_settings(),
        "judges": [
            {"name": j.name, "reply_format": j.reply_format, **j.llm.output_settings()}
            for j in cfg.judges
        ],
        "acceptance": cfg.acceptance,
    }
    key = R.make_id("engine-settings", settings)
    if run.exists(rel) and run.read_json(rel).get("key") != key:
        raise JobFailed(
            f"{run.uri_of(round_dir)} holds results made with other generator/judge settings; "
            "use a new round or storage.run_dir, or restore the original settings"
        )
    run.write_json(rel, {"key": key})


def pending_combinations(run: RunDir, round_dir: str, combos: pa.Table) -> tuple[pa.Table, int]:
    """Non-duplicate combinations with no result yet, renamed for the pipeline; and done count."""
    fresh = combos.filter(pc.equal(combos[R.STATUS], R.STATUS_OK))
    todo, done = without_written(fresh, R.ID, run, f"{round_dir}/results", "combination_id")
    table = pa.table(
        {
            "combination_id": todo[R.ID],
            "combination_index": todo["combination_index"],
            "concepts": todo["concepts"],
            "level": todo["level"],
            "pool_version": todo["pool_version"],
            "sampler_seed": todo[R.SEED],
        }
    )
    return table, done


def engine_helper_cpus(cfg: SynthesizeConfig) -> float:
    """The helper steps' CPUs for this round's engines (see llm_stage.helper_cpus)."""
    return helper_cpus(cfg.generator, *(j.llm for j in cfg.judges))


def build_pipeline(pending: pa.Table, cfg: SynthesizeConfig, block_rows: int):
    """The lazy dataset: generator -> settle -> (judge -> settle) x judges -> decide."""
    from promptcot_ray.llm.engine import build_processor
    from promptcot_ray.llm.stops import stop_ids_for
    from promptcot_ray.synthesis import stages as S

    ds = dataset_from_table(pending, block_rows)
    gen, form = cfg.generator, cfg.generator.prompt_format
    pre = S.BuildGenerationRequest(gen, form, stop_ids_for(gen, form, cfg.storage))
    if form == "raw":  # a plain prompt: no chat template stage
        gen = gen.model_copy(update={"apply_chat_template": False})
    ds = build_processor(gen, pre, S.CollectDraft(gen.max_tokens))(ds)
    return add_judges(ds.map(S.SettleDraft(), num_cpus=engine_helper_cpus(cfg)), cfg)


def add_judges(ds, cfg: SynthesizeConfig):
    """Chain every judge's processor onto a dataset of settled drafts, then decide."""
    from promptcot_ray.llm.engine import build_processor
    from promptcot_ray.synthesis import stages as S
    from promptcot_ray.synthesis.cascade import Cascade
    from promptcot_ray.synthesis.verdict import DecideVerdict

    carry = S.COMBINATION_COLUMNS + S.DRAFT_COLUMNS
    cpus = engine_helper_cpus(cfg)
    cascade = Cascade(cfg.acceptance, cfg.cascade.audit_fraction) if cfg.cascade_on else None
    for index, judge in enumerate(cfg.judges):
        pre, post = (
            S.BuildJudgeRequest(index, judge, cascade),
            S.CollectJudgement(index, carry, judge, cascade),
        )
        ds = build_processor(judge.llm, pre, post)(ds)
        ds = ds.map(S.SettleJudgement(index, carry, cascade), num_cpus=cpus)
        carry = carry + tuple(S.judge_column(index, f) for f in S.JUDGE_FIELDS)
    names = tuple(j.name for j in cfg.judges)
    return ds.map(DecideVerdict(names, cfg.acceptance), num_cpus=cpus)


def build_judges_only(drafts: pa.Table, cfg: SynthesizeConfig):
    """Judge already-written drafts (rows with the combination and draft columns)."""
    return add_judges(dataset_from_table(drafts, max(1, drafts.num_rows)), cfg)


def ledger_records(cfg: SynthesizeConfig, counts: RoundCounts, seconds: float) -> list[StageRecord]:
    """One ledger line per stage; each reconciles rows_in = rows_out + rejections."""
    from promptcot_ray.prompts import generator as gp
    from promptcot_ray.prompts import judge as jp

    extra = {"round": cfg.round}
    dropped = {r: counts.rejected[r] for r in R.COMBINATION_REASONS if counts.rejected.get(r)}
    recs = [
        StageRecord(
            job=JOB,
            stage=R.STAGE_COMBINATIONS,
            rows_in=counts.combinations,
            rows_out=counts.combinations - sum(dropped.values()),
            rejected=dropped,
            extra=extra,
        ),
        StageRecord(
            job=JOB,
            stage=R.STAGE_GENERATE,
            rows_in=counts.drafts,
            rows_out=counts.parsed,
            rejected=dict(counts.generate_rejected),
            tokens_in=counts.tokens["generate_in"],
            tokens_out=counts.tokens["generate_out"],
            seconds=seconds,
            model=cfg.generator.model,
            prompt_version=gp.version(cfg.generator.prompt_format),
            extra={**extra, "seconds_scope": "whole streaming pipeline (generate + judge)"},
        ),
    ]
    rows_in = counts.parsed
    for judge in cfg.judges:
        rejected = dict(counts.judge_rejected.get(judge.name, {}))
        recs.append(
            StageRecord(
                job=JOB,
                stage=f"{R.STAGE_JUDGE}:{judge.name}",
                rows_in=rows_in,
                rows_out=rows_in - sum(rejected.values()),
                rejected=rejected,
                tokens_in=counts.tokens[f"judge_{judge.name}_in"],
                tokens_out=counts.tokens[f"judge_{judge.name}_out"],
                seconds=seconds,
                model=judge.llm.model,
                prompt_version=jp.version(judge.reply_format),
                extra={
                    **extra,
                    "verdicts": dict(counts.judge_verdicts.get(judge.name, {})),
                    "calls_saved": counts.judge_calls_saved.get(judge.name, 0),
                },
            )
        )
        rows_in -= sum(rejected.values())
    recs.append(
        StageRecord(
            job=JOB,
            stage="total",
            rows_in=counts.combinations,
            rows_out=counts.accepted,
            rejected=dict(counts.rejected),
            seconds=seconds,
            extra={**extra, "quota": counts.quota} if counts.quota else extra,
        )
    )
    return recs


def run(cfg: SynthesizeConfig) -> RunSummary:
    """Run (or resume) one synthesis round into the run directory; Ray must be connected."""
    started = time.time()
    run_dir = RunDir(cfg.storage.run_dir, cfg.storage)
    run_dir.preflight()
    cfg = with_run_models(cfg, run_dir)  # `run:models/<name>/final` -> its location
    round_dir = round_dir_of(cfg)
    finished = finished_round(run_dir, round_dir, cfg)
    if finished is not None:  # costs two small reads, whatever the round's size
        if cfg.quality is not None:
            finished.outputs.update(run_quality_gates(cfg))
        return finished
    if cfg.quota is not None and (met := quota_already_met(run_dir, round_dir, cfg)):
        if cfg.quality is not None:
            met.outputs.update(run_quality_gates(cfg))
        return met
    pool = resolve_pool(cfg.pool, cfg.storage, run_dir)
    quota_status = None
    if cfg.quota is None:
        combos = ensure_combinations(run_dir, round_dir, cfg, pool)  # refuses other settings
        check_engine_settings(run_dir, round_dir, cfg)
        freeze_config(run_dir, cfg, round_dir)
        done = process_pending(run_dir, round_dir, cfg, combos)
    else:
        from promptcot_ray.synthesis.quota_combinations import QuotaCombinations
        from promptcot_ray.synthesis.quota_round import run_waves

        store = QuotaCombinations(run_dir, pool, cfg)  # refuses other settings first
        check_engine_settings(run_dir, round_dir, cfg)
        freeze_config(run_dir, cfg, round_dir)
        passes: list[int] = []

        def wave(store) -> int:
            combos = store.table(COMBINATION_READ_COLUMNS)
            passes.append(process_pending(run_dir, round_dir, cfg, combos, store.waves or None))
            return passes[-1]

        quota_status = run_waves(run_dir, round_dir, cfg, store, wave)
        done = passes[0]  # rows an earlier run had finished: what the first pass found
        combos = store.table(COMBINATION_READ_COLUMNS)
    counts = finalize(run_dir, round_dir, cfg.judges, cfg.round, combos)  # removes the marker
    counts.quota = quota_status
    if cfg.cascade_on:  # the report computes judge agreement on the audited sample only
        counts.cascade = {"audit_fraction": cfg.cascade.audit_fraction}
    seconds = time.time() - started
    records = ledger_records(cfg, counts, seconds)
    unbalanced = [r.stage for r in records if not r.reconciles()]
    if unbalanced:  # a bug in this code, never a data problem: stop loudly
        raise RuntimeError(f"ledger does not reconcile for stages {unbalanced}: {records}")
    append_records(run_dir, records)
    stats = {r.stage: r.__dict__ for r in records}
    if counts.quota:  # which of target or budget ended the round, per level
        stats["quota"] = counts.quota
    if counts.cascade:
        saved = dict(counts.judge_calls_saved)
        stats["cascade"] = {**counts.cascade, "judge_calls_saved": saved}
    run_dir.write_json(f"{round_dir}/stats.json", stats)
    _check_errors(cfg, counts)  # a failed round is not marked complete; a re-run retries
    mark_round_finished(run_dir, round_dir, cfg, counts)
    outputs = _outputs(run_dir, round_dir)
    if cfg.quality is not None:
        outputs.update(run_quality_gates(cfg))
    return RunSummary(run_dir.uri, round_dir, counts, seconds, done, outputs)


def process_pending(
    run_dir: RunDir, round_dir: str, cfg: SynthesizeConfig, combos, wave: int | None = None
) -> int:
    """Stream the combinations with no result yet through the engines, with a live progress
    line; returns how many were already done."""
    from promptcot_ray.synthesis.progress import RoundProgress

    pending, done = pending_combinations(run_dir, round_dir, combos)
    logger.info(
        "round %d: %d combinations, %d already done, %d to generate",
        cfg.round,
        combos.num_rows,
        done,
        pending.num_rows,
    )
    if pending.num_rows:
        ds = build_pipeline(pending, cfg, cfg.checkpoint_rows)
        schema = results_schema(len(cfg.judges))
        target = cfg.quota.total if cfg.quota is not None else None
        results = f"{round_dir}/results"
        with RoundProgress(run_dir, results, cfg.round, wave, pending.num_rows, target):
            write_rows(ds, run_dir, results, schema, "combination_id", engine_helper_cpus(cfg))
    return done


def quota_already_met(run_dir: RunDir, round_dir: str, cfg: SynthesizeConfig):
    """A finished quota round whose accepted rows already meet a (lowered) target: the
    round stays as it is (a no-op with a message); None when there is work to do."""
    from promptcot_ray.synthesis import quota as Q
    from promptcot_ray.synthesis.quota_round import settings_key

    try:
        marker = stage_marker.read(run_dir, round_dir) or {}
    except (OSError, ValueError):  # unreadable: not finished, the round runs
        return None
    counts = marker.get("counts") or {}
    quota = counts.get("quota") or {}
    if quota.get("settings") != settings_key(cfg):
        return None
    progress = Q.Progress(accepted=dict(quota.get("accepted_per_level", {})))
    if any(Q.remaining(cfg.quota, cfg.combinations.levels, progress).values()):
        return None
    logger.info(
        "round %d already has %d accepted problems, which meets the target of %d; nothing to "
        "sample (a lower target never removes accepted rows)",
        cfg.round,
        quota.get("accepted", 0),
        cfg.quota.total,
    )
    return _marker_summary(run_dir, round_dir, RoundCounts.from_json(counts))


def _marker_summary(run_dir: RunDir, round_dir: str, counts: RoundCounts) -> RunSummary:
    """The summary of a round nothing is left to do in: its marker's counts, all done before."""
    outputs = _outputs(run_dir, round_dir)
    return RunSummary(run_dir.uri, round_dir, counts, 0.0, counts.drafts, outputs)


def _outputs(run_dir: RunDir, round_dir: str) -> dict[str, str]:
    return {name: run_dir.uri_of(round_dir, name) for name in OUTPUT_TABLES}


def mark_round_finished(
    run_dir: RunDir, round_dir: str, cfg: SynthesizeConfig, counts: RoundCounts
) -> None:
    """Commit the round (marker last) with its config hash and every counter."""
    chash = config_hash(cfg)
    stage_marker.commit(run_dir, round_dir, chash, counts.to_json(), accepted=counts.accepted)


def finished_round(run_dir: RunDir, round_dir: str, cfg: SynthesizeConfig) -> RunSummary | None:
    """The summary of a round already finished with this config, from its marker alone.

    A finished round is final: its few error rows (under max_error_fraction) are not
    retried; delete its _SUCCESS.json to retry them. A marker without counts (older
    versions) is finalized once more.
    """
    if stage_marker.why_not_done(run_dir, round_dir, config_hash(cfg)) is not None:
        return None
    marker = stage_marker.read(run_dir, round_dir) or {}
    if not isinstance(marker.get("counts"), dict) or "drafts" not in marker["counts"]:
        return None
    counts = RoundCounts.from_json(marker["counts"])
    logger.info(
        "round %d is already finished with this config (%d accepted); nothing to do",
        cfg.round,
        counts.accepted,
    )
    return _marker_summary(run_dir, round_dir, counts)


def run_quality_gates(cfg: SynthesizeConfig) -> dict[str, str]:
    """The quality job's Ray Data stages over every round's accepted rows (config switch)."""
    from promptcot_ray.quality import job as quality
    from promptcot_ray.quality.config import QualityConfig

    qcfg = QualityConfig(storage=cfg.storage, ray=cfg.ray, **dict(cfg.quality))
    try:
        summary = quality.run(qcfg)
    except quality.NoAcceptedProblems:
        logger.info("quality gates: no accepted problem in any round yet; nothing to check")
        return {}
    logger.info(
        "quality gates: %d of %d accepted problems kept; removed %s",
        summary.kept,
        summary.rows_in,
        dict(summary.rejected) or "none",
    )
    return summary.outputs


def _check_errors(cfg: SynthesizeConfig, counts: RoundCounts) -> None:
    engine_rows = counts.drafts + counts.parsed * len(cfg.judges)
    if engine_rows and counts.errors / engine_rows > cfg.max_error_fraction:
        raise JobFailed(
            f"{counts.errors} of {engine_rows} engine calls failed (more than "
            f"max_error_fraction={cfg.max_error_fraction}); see the error column in rejected/"
        )


EXPECTED_ERRORS = (JobFailed,)
