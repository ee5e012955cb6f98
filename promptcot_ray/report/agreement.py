"""How far the judges agree: verdict confusion matrices and Cohen's kappa per judge pair.

Verdicts and per-criterion ratings are the same three ordered levels (perfect, acceptable,
bad), so the confusion matrix is over verdicts. Kappa is unweighted and computed only over
drafts both judges rated; it is undefined when both gave one and the same level to every draft
(chance agreement is then 1), and the page says so instead of printing nan.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from itertools import combinations

import pandas as pd

from promptcot_ray import records as R
from promptcot_ray.report.collect import RunData

KAPPA_UNDEFINED = "undefined: both judges gave one and the same rating every time"


@dataclass
class Kappa:
    """Cohen's kappa of one rating between two judges, or why it has no value."""

    what: str
    n: int
    value: float | None
    note: str | None = None


@dataclass
class PairAgreement:
    """Two judges compared on the drafts both rated."""

    judge_a: str
    judge_b: str
    confusion: pd.DataFrame  # rows: judge_a's verdict, columns: judge_b's verdict
    kappas: list[Kappa] = field(default_factory=list)


def kappa(a: list[str], b: list[str], what: str, labels: list[str] | None = None) -> Kappa:
    """Unweighted Cohen's kappa via scikit-learn; None with a reason when it is undefined."""
    from sklearn.metrics import cohen_kappa_score

    if not a:
        return Kappa(what, 0, None, "no draft rated by both judges")
    if len(set(a) | set(b)) < 2:
        return Kappa(what, len(a), None, KAPPA_UNDEFINED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        value = float(cohen_kappa_score(a, b, labels=labels))
    return Kappa(what, len(a), value)


def _wide(judgements: pd.DataFrame) -> pd.DataFrame:
    """One row per (round, draft), a column per judge's verdict and ratings (ok rows only)."""
    ok = judgements[judgements[R.STATUS] == R.STATUS_OK]
    return ok.pivot_table(
        index=["round", "draft_id"],
        columns="judge",
        values=["verdict", "ratings"],
        aggfunc="first",
    )


def _criterion(ratings: pd.Series, criterion: str) -> pd.Series:
    return ratings.map(lambda text: (json.loads(text) or {}).get(criterion) if text else None)


def pair_agreement(wide: pd.DataFrame, a: str, b: str) -> PairAgreement:
    """Confusion matrix and kappas (verdict, accept vote, each criterion) of judges a and b."""
    both = wide[wide[("verdict", a)].notna() & wide[("verdict", b)].notna()]
    va, vb = both[("verdict", a)].tolist(), both[("verdict", b)].tolist()
    levels = list(R.VERDICTS)
    confusion = pd.crosstab(
        pd.Categorical(va, categories=levels), pd.Categorical(vb, categories=levels), dropna=False
    )
    confusion.index.name, confusion.columns.name = a, b
    kappas = [
        kappa(va, vb, "verdict (perfect / acceptable / bad)", levels),
        kappa([v == "perfect" for v in va], [v == "perfect" for v in vb], "perfect vs not"),
    ]
    for criterion in R.CRITERIA:
        ca = _criterion(both[("ratings", a)], criterion)
        cb = _criterion(both[("ratings", b)], criterion)
        rated = ca.notna() & cb.notna()
        kappas.append(kappa(ca[rated].tolist(), cb[rated].tolist(), f"rating: {criterion}", levels))
    return PairAgreement(a, b, confusion, kappas)


def agreement(data: RunData) -> list[PairAgreement]:
    """Every pair of judges over all rounds; [] when fewer than two judges rated anything."""
    parts = [r.judgements.assign(round=r.name) for r in data.rounds if not r.judgements.empty]
    if not parts:
        return []
    judgements = pd.concat(parts, ignore_index=True)
    names = sorted(judgements["judge"].dropna().unique())
    if len(names) < 2:
        return []
    wide = _wide(judgements)
    for column in ("verdict", "ratings"):  # a judge with no ok row has no column
        for name in names:
            if (column, name) not in wide.columns:
                wide[(column, name)] = None
    return [pair_agreement(wide, a, b) for a, b in combinations(names, 2)]
