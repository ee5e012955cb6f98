"""The quota round's arithmetic: how far each level is from its target, how many
combinations the next wave sends, and why a round stops. Pure functions of the counts the
written rows give (no I/O), so the stopping rule and the extension arithmetic are unit-tested
on their own.

Targets are kept per *bucket*: every level with its own target (quota.per_level) is one,
and the levels without one share the rest of target_accepted (the `FREE` bucket).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from promptcot_ray.synthesis.config import QuotaConfig

FREE = "*"  # the bucket of every level without a per-level target

STOP_TARGET_MET = "target_met"
STOP_COMBINATION_BUDGET = "combination_budget"
STOP_TOKEN_BUDGET = "token_budget"
STOP_GPU_BUDGET = "gpu_hours_budget"
STOP_POOL_EXHAUSTED = "pool_exhausted"


@dataclass
class Progress:
    """What the round's written rows say so far, per level."""

    accepted: dict[str, int] = field(default_factory=dict)
    decided: dict[str, int] = field(default_factory=dict)  # combinations with an outcome
    sent: int = 0  # unique combinations sent to the generator (decided or in flight)
    sampled: int = 0  # combination indexes sampled (duplicates and skipped levels included)
    tokens: int = 0  # tokens the generator and judges wrote
    gpu_hours: float = 0.0  # GPU time the round's engine pools held (measured waves)

    @property
    def total_accepted(self) -> int:
        return sum(self.accepted.values())

    @property
    def total_decided(self) -> int:
        return sum(self.decided.values())


def bucket_of(level: str, quota: QuotaConfig) -> str:
    return level if level in quota.per_level else FREE


def targets(quota: QuotaConfig, levels: Sequence[str]) -> dict[str, int]:
    """Each bucket's target; FREE only when some sampled level has no target of its own."""
    out = dict(quota.per_level)
    if any(level not in quota.per_level for level in levels):
        out[FREE] = quota.total - quota.level_total
    return out


def _per_bucket(values: Mapping[str, int], quota: QuotaConfig) -> dict[str, int]:
    out: dict[str, int] = {}
    for level, n in values.items():
        out[bucket_of(level, quota)] = out.get(bucket_of(level, quota), 0) + n
    return out


def remaining(quota: QuotaConfig, levels: Sequence[str], progress: Progress) -> dict[str, int]:
    """Accepted problems still missing, per bucket (0 for a full bucket)."""
    got = _per_bucket(progress.accepted, quota)
    return {b: max(0, t - got.get(b, 0)) for b, t in targets(quota, levels).items()}


def accept_rates(quota: QuotaConfig, levels: Sequence[str], progress: Progress) -> dict[str, float]:
    """Per bucket, the accept rate seen so far, smoothed toward the round's overall rate
    (itself smoothed toward quota.expected_accept_rate), so a bucket with few decided
    combinations is not sized from noise and a bucket with none accepted yet is not infinite."""
    w = quota.prior_weight

    def smoothed(accepted: int, decided: int, prior: float) -> float:
        return (accepted + prior * w) / (decided + w) if decided + w else prior

    overall = smoothed(progress.total_accepted, progress.total_decided, quota.expected_accept_rate)
    acc, dec = _per_bucket(progress.accepted, quota), _per_bucket(progress.decided, quota)
    rates = {}
    for b in targets(quota, levels):
        rate = smoothed(acc.get(b, 0), dec.get(b, 0), overall)
        # nothing accepted in many decided: the rate is small but never 0 (the wave stays finite)
        rates[b] = rate if rate > 0 else 1.0 / (dec.get(b, 0) + w + 1)
    return rates


def stop_reason(quota: QuotaConfig, levels: Sequence[str], progress: Progress) -> str | None:
    """Why the round stops now (target first), or None to send another wave."""
    if not any(remaining(quota, levels, progress).values()):
        return STOP_TARGET_MET
    if quota.max_combinations is not None and progress.sent >= quota.max_combinations:
        return STOP_COMBINATION_BUDGET
    if quota.max_generated_tokens is not None and progress.tokens >= quota.max_generated_tokens:
        return STOP_TOKEN_BUDGET
    if quota.max_gpu_hours is not None and progress.gpu_hours >= quota.max_gpu_hours:
        return STOP_GPU_BUDGET
    return None


def wave_needs(quota: QuotaConfig, levels: Sequence[str], progress: Progress) -> dict[str, int]:
    """Combinations the next wave sends, per bucket: what is missing over the bucket's
    accept rate, then cut to wave_combinations and to what the budgets leave."""
    rates = accept_rates(quota, levels, progress)
    needs = {
        b: math.ceil(missing / rates[b])
        for b, missing in remaining(quota, levels, progress).items()
        if missing
    }
    cap = quota.wave_combinations
    if quota.max_combinations is not None:
        cap = min(cap, quota.max_combinations - progress.sent)
    if quota.max_generated_tokens is not None and progress.total_decided:
        per_combination = progress.tokens / progress.total_decided
        left = quota.max_generated_tokens - progress.tokens
        cap = min(cap, math.ceil(left / per_combination) if per_combination else cap)
    if quota.max_gpu_hours is not None and progress.total_decided and progress.gpu_hours:
        per_combination_h = progress.gpu_hours / progress.total_decided
        cap = min(cap, math.ceil((quota.max_gpu_hours - progress.gpu_hours) / per_combination_h))
    return _scaled(needs, max(cap, 0))


def _scaled(needs: dict[str, int], cap: int) -> dict[str, int]:
    """`needs` cut to `cap` in all, in proportion (largest remainders get the rest)."""
    total = sum(needs.values())
    if total <= cap:
        return needs
    shares = {b: n * cap / total for b, n in needs.items()}
    out = {b: int(s) for b, s in shares.items()}
    for b in sorted(shares, key=lambda b: out[b] - shares[b])[: cap - sum(out.values())]:
        out[b] += 1
    return {b: n for b, n in out.items() if n}


def select(buckets: np.ndarray, fresh: np.ndarray, needs: dict[str, int]) -> np.ndarray:
    """Which rows of one sampling step are sent, in index order: a fresh (not duplicate)
    combination is sent while its bucket still needs combinations in this wave."""
    take = np.zeros(len(buckets), bool)
    for bucket, need in needs.items():
        mine = fresh & (buckets == bucket)
        take |= mine & (np.cumsum(mine) <= need)
    return take


def quota_line(quota: dict) -> str:
    """Which of target or budget ended a quota round, and what is left (one line)."""
    left = {b: n for b, n in quota["remaining"].items() if n}
    rates = ", ".join(f"{k} {v:.0%}" for k, v in quota["accept_rate_per_level"].items())
    return (
        f"quota: {quota['accepted']} of {quota['target']} accepted, stopped by "
        f"{quota['stop_reason']}; {quota['combinations_sent']} combinations sent "
        f"({quota['combinations_sampled']} sampled) in {quota['waves']} wave(s)"
        + (f", {quota['gpu_hours']:,.2f} GPU-hours" if quota.get("gpu_hours") else "")
        + "; "
        + (f"still missing {left}; " if left else "nothing missing; ")
        + f"accept rate per level: {rates or '-'}"
    )
