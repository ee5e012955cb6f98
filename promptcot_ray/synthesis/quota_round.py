"""A quota round: waves of combinations through generator and judges until the target of
accepted problems is met or the budget is spent (issue #16).

Each wave is one streaming Ray Data run over the combinations the wave added. Before
sampling the next, the driver counts what the written results say (a few columns, one
concurrent read): accepted and decided per level, tokens spent. The next wave is what is
still missing over the accept rate seen so far, so the last wave is sized to the gap and the
round ends close to its target. A re-run first finishes the combinations already committed
(the wave a kill interrupted), then goes on from the same index: the same ids as a run that
never stopped. Raising the target adds waves; a lower one finds the target met.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from promptcot_ray import records as R
from promptcot_ray.config import config_hash
from promptcot_ray.errors import UserError
from promptcot_ray.resume import finished_rows
from promptcot_ray.storage import RunDir
from promptcot_ray.synthesis import quota as Q
from promptcot_ray.synthesis.config import SynthesizeConfig
from promptcot_ray.synthesis.quota_combinations import QuotaCombinations
from promptcot_ray.synthesis.stages import judge_column

logger = logging.getLogger(__name__)


def settings_key(cfg: SynthesizeConfig) -> str:
    """The round's config without its quota: a changed target keeps the rows valid."""
    return config_hash(cfg.model_copy(update={"quota": None}))


def _level_counts(table: pa.Table) -> dict[str, int]:
    groups = table.group_by("level").aggregate([([], "count_all")])  # one row per level
    return dict(zip(groups["level"].to_pylist(), groups["count_all"].to_pylist(), strict=True))


def held_gpus(cfg: SynthesizeConfig) -> int:
    """GPUs the round's engine pools hold while a wave runs: replicas (their max) x tensor
    parallel size of every GPU vLLM pool; CPU, rehearsal and HTTP engines hold none."""
    llms = [cfg.generator, *(j.llm for j in cfg.judges)]
    return sum(
        llm.max_replicas * llm.tensor_parallel_size
        for llm in llms
        if llm.engine == "vllm" and llm.device == "gpu"
    )


class GpuClock:
    """GPU time the round's waves held, kept in the round folder so a re-run adds to it.

    Written after each wave: a wave a kill interrupted is not counted (its rows are, and the
    budget's per-combination rate is taken from the waves that were)."""

    FILE = "gpu-time.json"

    def __init__(self, run: RunDir, round_dir: str, gpus: int) -> None:
        self.run, self.rel, self.gpus = run, f"{round_dir}/{self.FILE}", gpus
        self.gpu_seconds = self._read() if run.exists(self.rel) else 0.0
        self._started = 0.0

    def _read(self) -> float:
        try:
            return float(self.run.read_json(self.rel)["gpu_seconds"])
        except (ValueError, KeyError, TypeError) as exc:  # the budget cannot be known
            raise UserError(
                f"{self.run.uri_of(self.rel)} is unreadable ({exc}); the round's GPU-hours "
                "so far are unknown: restore the file or delete it to count from zero"
            ) from None

    @property
    def hours(self) -> float:
        return self.gpu_seconds / 3600

    def __enter__(self) -> GpuClock:
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is not None:
            return  # an interrupted wave: not counted
        self.gpu_seconds += (time.monotonic() - self._started) * self.gpus
        self.run.write_json(self.rel, {"gpu_seconds": self.gpu_seconds, "gpus": self.gpus})


def read_progress(
    run: RunDir, round_dir: str, cfg: SynthesizeConfig, store: QuotaCombinations
) -> Q.Progress:
    """Accepted, decided and tokens per level from the written results; sent and sampled
    from the committed combinations."""
    combos = store.table([R.STATUS])
    sent = int(pc.sum(pc.equal(combos[R.STATUS], R.STATUS_OK).cast(pa.int64())).as_py() or 0)
    progress = Q.Progress(sent=sent, sampled=store.rows)
    spend = ["draft_tokens_out"] + [judge_column(i, "tokens_out") for i in range(len(cfg.judges))]
    results = run.read_table(
        f"{round_dir}/results", ["combination_id", R.STATUS, "level", "accepted", *spend]
    )
    if results is None:
        return progress
    progress.tokens = sum(int(pc.sum(results[c]).as_py() or 0) for c in spend)  # retries too
    decided = finished_rows(results, "combination_id")
    decided = decided.filter(pc.not_equal(decided[R.STATUS], R.STATUS_ERROR))
    progress.decided = _level_counts(decided)
    progress.accepted = _level_counts(decided.filter(pc.fill_null(decided["accepted"], False)))
    return progress


def status(
    cfg: SynthesizeConfig, store: QuotaCombinations, progress: Q.Progress, reason: str | None
) -> dict[str, Any]:
    """What stats.json, the ledger and the summary say about the quota."""
    quota, levels = cfg.quota, cfg.combinations.levels
    assert quota is not None
    rates = {
        level: round(progress.accepted.get(level, 0) / n, 4)
        for level, n in sorted(progress.decided.items())
        if n
    }
    return {
        "stop_reason": reason,
        "target": quota.total,
        "per_level_target": dict(quota.per_level),
        "accepted": progress.total_accepted,
        "accepted_per_level": dict(sorted(progress.accepted.items())),
        "accept_rate_per_level": rates,
        "remaining": Q.remaining(quota, levels, progress),
        "combinations_sent": progress.sent,
        "combinations_sampled": progress.sampled,
        "generated_tokens": progress.tokens,
        "gpu_hours": round(progress.gpu_hours, 4),
        "budget": {
            "max_combinations": quota.max_combinations,
            "max_generated_tokens": quota.max_generated_tokens,
            "max_gpu_hours": quota.max_gpu_hours,
        },
        "waves": store.waves,
        "settings": settings_key(cfg),
    }


def run_waves(
    run: RunDir,
    round_dir: str,
    cfg: SynthesizeConfig,
    store: QuotaCombinations,
    process: Callable[[QuotaCombinations], int],
) -> dict[str, Any]:
    """Send waves until the target is met or the budget spent, and say how the round ended.

    `process` runs the pipeline over the committed combinations that have no result yet
    (and returns how many were already done)."""
    assert cfg.quota is not None
    levels = cfg.combinations.levels
    clock = GpuClock(run, round_dir, held_gpus(cfg))
    if cfg.quota.max_gpu_hours is not None and not clock.gpus:
        logger.warning("quota.max_gpu_hours is set, but this round's engines hold no GPU")
    while True:
        with clock:
            process(store)  # the wave a kill interrupted, then each new one
        progress = read_progress(run, round_dir, cfg, store)
        progress.gpu_hours = clock.hours
        reason = Q.stop_reason(cfg.quota, levels, progress)
        if reason is None and store.exhausted:
            reason = Q.STOP_POOL_EXHAUSTED
        needs = Q.wave_needs(cfg.quota, levels, progress) if reason is None else {}
        if reason is None and not needs:  # a budget leaves room for no combination
            reason = Q.STOP_COMBINATION_BUDGET
        logger.info(
            "round %d: %d of %d accepted, %d combinations sent, %d sampled%s",
            cfg.round,
            progress.total_accepted,
            cfg.quota.total,
            progress.sent,
            progress.sampled,
            f"; stopping: {reason}" if reason else f"; wave {store.waves + 1} sends {needs}",
        )
        if reason is not None:
            return status(cfg, store, progress, reason)
        got = store.extend(needs)
        if not sum(got.values()):
            store.exhausted = True
