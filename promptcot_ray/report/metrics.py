"""The report's numbers, computed from the collected tables: funnel, reasons, coverage, costs.

Pure pandas arithmetic, so every figure on the page can be checked by hand in a test.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from promptcot_ray import records as R
from promptcot_ray.report.agreement import PairAgreement, agreement
from promptcot_ray.report.collect import RoundData, RunData

FUNNEL_STEPS = (
    ("combinations", "combinations"),
    ("unique", "unique combinations"),
    ("parsed", "parsed drafts"),
    ("judged", "judged by every judge"),
    ("accepted", "accepted"),
    ("after_quality", "after quality gates"),
    ("distilled", "distilled (label kept)"),
)


def judged(judgements: pd.DataFrame) -> int:
    """Drafts that every judge of the round rated (a judgement with status ok from each)."""
    if judgements.empty:
        return 0
    judges = judgements["judge"].nunique()
    ok = judgements[judgements[R.STATUS] == R.STATUS_OK]
    per_draft = ok.groupby("draft_id")["judge"].nunique()
    return int((per_draft == judges).sum())


def _in_round(ids: pd.Series, rnd: RoundData) -> int:
    return int(ids.isin(set(rnd.accepted[R.ID])).sum())


def funnel(data: RunData) -> pd.DataFrame:
    """One row per round: rows left after each step, and the accept rate.

    `after_quality` counts the round's rows in problems/; `distilled` the round's problems
    whose pseudo-label was kept (status ok). Either is None when that job has not run.
    """
    labelled = None
    if data.labels is not None:
        ok = data.labels[data.labels[R.STATUS] == R.STATUS_OK]
        labelled = ok["problem_id"]
    rows = []
    for rnd in data.rounds:
        kept = None
        if data.kept is not None:
            kept = int((data.kept["round"] == rnd.index).sum())
        row = {
            "round": rnd.name,
            "complete": rnd.complete,
            "combinations": rnd.combinations,
            "unique": rnd.unique,
            "parsed": rnd.parsed,
            "judged": judged(rnd.judgements),
            "accepted": len(rnd.accepted),
            "after_quality": kept,
            "distilled": _in_round(labelled, rnd) if labelled is not None else None,
        }
        row["accept_rate"] = row["accepted"] / rnd.combinations if rnd.combinations else None
        row["accept_rate_parsed"] = row["accepted"] / rnd.parsed if rnd.parsed else None
        rows.append(row)
    return pd.DataFrame(rows)


def distilled_elsewhere(data: RunData) -> int:
    """Labelled problems that are not any round's accepted row (distill ran on a file)."""
    if data.labels is None:
        return 0
    ids = set().union(*(set(r.accepted[R.ID]) for r in data.rounds)) if data.rounds else set()
    ok = data.labels[data.labels[R.STATUS] == R.STATUS_OK]
    return int((~ok["problem_id"].isin(ids)).sum())


def rejection_reasons(data: RunData) -> pd.DataFrame:
    """Rows removed at each step by reason: columns step, reason, round, rows."""
    rows = [
        {"step": "synthesis", "reason": reason, "round": rnd.name, "rows": n}
        for rnd in data.rounds
        for reason, n in rnd.rejected.items()
    ]
    rows += [
        {"step": "quality gates", "reason": reason, "round": "all", "rows": n}
        for reason, n in (data.removed or {}).items()
    ]
    if data.labels is not None:
        reasons = data.labels[data.labels[R.STATUS] != R.STATUS_OK][R.REASON].fillna("none")
        rows += [
            {"step": "distill labels", "reason": reason, "round": "all", "rows": int(n)}
            for reason, n in reasons.value_counts().items()
        ]
    return pd.DataFrame(rows, columns=["step", "reason", "round", "rows"])


def accepted_rows(data: RunData) -> pd.DataFrame:
    """Every round's accepted rows (id, level, concepts, problem_words) with a round column."""
    parts = [r.accepted.assign(round=r.name) for r in data.rounds if not r.accepted.empty]
    if not parts:
        return pd.DataFrame(columns=[R.ID, "level", "concepts", "problem_words", "round"])
    return pd.concat(parts, ignore_index=True)


def levels(accepted: pd.DataFrame) -> pd.DataFrame:
    """Accepted problems per difficulty level (rows, in the method's order) and round."""
    table = pd.crosstab(accepted["level"], accepted["round"])
    order = [lv for lv in R.LEVELS if lv in table.index]
    order += sorted(lv for lv in table.index if lv not in R.LEVELS)
    return table.reindex(order)


@dataclass
class Coverage:
    """How much of the concept pool the accepted problems use."""

    distinct: int
    pool_size: int | None
    top: list[tuple[str, int]] = field(default_factory=list)

    @property
    def share(self) -> float | None:
        return self.distinct / self.pool_size if self.pool_size else None


def coverage(accepted: pd.DataFrame, pool_size: int | None, top: int = 15) -> Coverage:
    """Distinct pool concepts among accepted problems, and the most frequent ones."""
    counts = accepted["concepts"].explode().dropna().value_counts()
    pairs = [(str(c), int(n)) for c, n in counts.head(top).items()]
    return Coverage(len(counts), pool_size, pairs)


def ledger_table(ledger: list[dict[str, Any]]) -> pd.DataFrame:
    """The ledger as one row per (job, stage, round), with a reconciliation check."""
    rows = []
    for line in ledger:
        rejected = line.get("rejected") or {}
        rows.append(
            {
                "job": line["job"],
                "stage": line["stage"],
                "round": (line.get("extra") or {}).get("round"),
                "rows_in": line["rows_in"],
                "rows_out": line["rows_out"],
                "rejected": sum(rejected.values()),
                "tokens_in": line.get("tokens_in", 0),
                "tokens_out": line.get("tokens_out", 0),
                "seconds": float(line.get("seconds", 0.0)),
                "reconciles": line["rows_in"] == line["rows_out"] + sum(rejected.values()),
                "shared_seconds": _shares_seconds(line),
            }
        )
    return pd.DataFrame(rows)


def _shares_seconds(line: dict[str, Any]) -> bool:
    """Synthesize's generate and judge lines repeat the whole pipeline's seconds (one stream):
    only its `total` line counts them, so a sum over stages does not count them twice."""
    return line["job"] == "synthesize" and line["stage"] != "total"


@dataclass
class Findings:
    """Everything the plots and the page show, computed once."""

    data: RunData
    funnel: pd.DataFrame
    reasons: pd.DataFrame
    accepted: pd.DataFrame
    levels: pd.DataFrame
    coverage: Coverage
    ledger: pd.DataFrame
    distilled_elsewhere: int
    agreement: list[PairAgreement] = field(default_factory=list)


def findings(data: RunData) -> Findings:
    """Compute every table of the report from the collected run."""
    accepted = accepted_rows(data)
    return Findings(
        data=data,
        funnel=funnel(data),
        reasons=rejection_reasons(data),
        accepted=accepted,
        levels=levels(accepted),
        coverage=coverage(accepted, data.pool_size),
        ledger=ledger_table(data.ledger),
        distilled_elsewhere=distilled_elsewhere(data),
        agreement=agreement(data),
    )
