"""How far the judges agree: verdict confusion matrices and Cohen's kappa per judge pair.

Verdicts and per-criterion ratings are the same three ordered levels (perfect, acceptable,
bad), so the confusion matrix is over verdicts. Kappa is unweighted and computed only over
drafts both judges rated (with a judge cascade, the audited drafts only); it is undefined
when both gave one and the same level to every draft (chance agreement is then 1), and the
page says so instead of printing nan.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field, replace
from itertools import combinations

import pandas as pd

from promptcot_ray import records as R
from promptcot_ray.report.collect import RoundData, RunData
from promptcot_ray.synthesis.cascade import audited

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
    sample: str | None = None  # set when a judge cascade limited the drafts both judged


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


def _judged_by_all(rnd: RoundData) -> pd.DataFrame:
    """A round's judgements the agreement may use: all of them, or, when the round ran its
    judges in a cascade, only the audited drafts (every judge judged those; the others
    reached a later judge only when the first liked them, a biased sample)."""
    frame = rnd.judgements.assign(round=rnd.name)
    if not rnd.cascade:
        return frame
    fraction = float(rnd.cascade.get("audit_fraction", 0.0))
    ids = frame["draft_id"].drop_duplicates()
    # one hash per draft, as the cascade drew them (a content hash: not vectorisable)
    kept = ids[[audited(str(d), fraction) for d in ids]]
    return frame[frame["draft_id"].isin(kept)]


def _sample_note(data: RunData, judgements: pd.DataFrame) -> str | None:
    cascaded = [r for r in data.rounds if r.cascade]
    if not cascaded:
        return None
    fractions = sorted({f"{float(r.cascade.get('audit_fraction', 0)):.0%}" for r in cascaded})
    drafts = judgements["draft_id"].nunique()
    return (
        f"from an audited sample: {', '.join(r.name for r in cascaded)} ran the judges in a "
        f"cascade, so only the {drafts:,} audited drafts ({' / '.join(fractions)} of drafts, "
        "every judge judged them) are compared"
    )


def agreement(data: RunData) -> list[PairAgreement]:
    """Every pair of judges over all rounds; [] when fewer than two judges rated anything."""
    parts = [_judged_by_all(r) for r in data.rounds if not r.judgements.empty]
    parts = [p for p in parts if not p.empty]
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
    note = _sample_note(data, judgements)
    return [replace(pair_agreement(wide, a, b), sample=note) for a, b in combinations(names, 2)]
