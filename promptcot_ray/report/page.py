"""The report page: one self-contained HTML file (inline CSS, no script, no remote assets).

Figures are `<img src="plots/NAME.png">` next to the page, so it opens from disk (or a
downloaded copy of report/) without a server. Each section says plainly when the run has
nothing for it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from promptcot_ray.report.metrics import Findings
from promptcot_ray.synthesis.quota import quota_line

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 0;
       color: #1d232a; background: #f6f7f9; }
main { max-width: 1100px; margin: 0 auto; padding: 24px 32px 64px; background: #fff; }
h1 { font-size: 26px; margin-bottom: 4px; }
h2 { font-size: 20px; margin-top: 36px; border-bottom: 2px solid #dde3ea; padding-bottom: 4px; }
h3 { font-size: 16px; margin-top: 20px; }
.meta { color: #5b6570; font-size: 14px; }
nav a { margin-right: 14px; font-size: 14px; }
table { border-collapse: collapse; margin: 10px 0 16px; font-size: 14px; }
th, td { border: 1px solid #d5dbe2; padding: 4px 10px; }
th { background: #eef2f6; text-align: left; }
td:first-child { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr:nth-child(even) td { background: #fafbfc; }
img { max-width: 100%; display: block; margin: 8px 0 16px; }
.missing { color: #8a5a00; background: #fff6e0; border-left: 4px solid #e0a800;
           padding: 6px 10px; }
.note { color: #5b6570; font-size: 13px; }
"""


_NUMERIC = re.compile(r"^-?[\d,.]+( ± [\d,.]+)?%?$|^—$")  # right-aligned like numbers


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def fmt(value: Any, digits: int = 1) -> str:
    """A table cell's text: integers with separators, floats rounded, missing as a dash."""
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{int(value):,}"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return str(value)


def pct(value: float | None) -> str:
    return "—" if value is None or pd.isna(value) else f"{100 * value:.1f}%"


def table(table_id: str, headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """An HTML table; numeric cells are right-aligned. Cells are escaped here."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = []
    for row in rows:
        cells = []
        for cell in row:
            numeric = isinstance(cell, int | float) and not isinstance(cell, bool)
            text = fmt(cell) if numeric or cell is None else str(cell)
            cls = ' class="num"' if numeric or _NUMERIC.match(text) else ""
            cells.append(f"<td{cls}>{esc(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f'<table id="{esc(table_id)}"><tr>{head}</tr>{"".join(body)}</table>'


def missing(text: str) -> str:
    return f'<p class="missing">{esc(text)}</p>'


def image(figures: dict[str, str], name: str, alt: str) -> str:
    """The figure's <img>, or nothing when it was not drawn (its section explains why)."""
    return f'<img src="{esc(figures[name])}" alt="{esc(alt)}">' if name in figures else ""


def _funnel(f: Findings, figures: dict[str, str]) -> str:
    if f.funnel.empty:
        return missing("No synthesis round in this run (no synthesis/round-<k>/ folder).")
    headers = ["round", "combinations", "unique", "parsed drafts", "judged", "accepted"]
    headers += ["accept rate (of combinations)", "accept rate (of parsed)"]
    headers += ["after quality gates", "distilled (label kept)"]
    rows = [
        [r["round"] + ("" if r["complete"] else " (incomplete)")]
        + [_int(r[k]) for k in ("combinations", "unique", "parsed", "judged", "accepted")]
        + [pct(r["accept_rate"]), pct(r["accept_rate_parsed"])]
        + [_int(r["after_quality"]), _int(r["distilled"])]
        for _, r in f.funnel.iterrows()
    ]
    parts = [table("funnel", headers, rows)]
    for rnd in f.data.rounds:
        if rnd.quota:
            parts.append(f'<p class="note">{esc(rnd.name)} {esc(quota_line(rnd.quota))}</p>')
    if f.data.kept is None:
        parts.append(missing("No quality gates in this run (problems/ is missing)."))
    if f.data.labels is None:
        parts.append(missing("No distillation in this run (distill/labels is missing)."))
    elif f.distilled_elsewhere:
        parts.append(
            f'<p class="note">{f.distilled_elsewhere:,} labelled problems came from outside the '
            "synthesis rounds (distill ran on a file).</p>"
        )
    if not f.funnel["complete"].all():
        parts.append(
            '<p class="note">An incomplete round has no _SUCCESS.json yet: its '
            "counts are those written so far.</p>"
        )
    parts.append(image(figures, "funnel", "funnel per round"))
    return "".join(parts)


def _int(value: Any) -> int | None:
    return None if value is None or pd.isna(value) else int(value)


def _reasons(f: Findings, figures: dict[str, str]) -> str:
    if f.reasons.empty:
        return missing("No rejected or removed rows in this run.")
    pivot = f.reasons.pivot_table(
        index=["step", "reason"], columns="round", values="rows", aggfunc="sum", sort=False
    )
    rows = [
        [step, reason, *(_int(v) for v in values), int(pd.Series(values).fillna(0).sum())]
        for (step, reason), values in zip(pivot.index, pivot.to_numpy().tolist(), strict=True)
    ]
    headers = ["step", "reason", *[str(c) for c in pivot.columns], "total"]
    return image(figures, "reasons", "rejection reasons") + table("reasons", headers, rows)


def _accepted(f: Findings, figures: dict[str, str]) -> str:
    if f.accepted.empty:
        return missing("No accepted problem in this run, so no levels or concepts to show.")
    cov = f.coverage
    pool = (
        f"{cov.distinct:,} of the pool's {cov.pool_size:,} concepts ({pct(cov.share)})"
        if cov.pool_size
        else f"{cov.distinct:,} distinct concepts (no concepts/pool in this run to compare with)"
    )
    return (
        "<h3>Difficulty levels</h3>"
        + image(figures, "levels", "accepted problems by level")
        + "<h3>Concept coverage</h3>"
        + f'<p id="coverage">Accepted problems use {esc(pool)}.</p>'
        + image(figures, "coverage", "most frequent concepts")
    )


def _agreement(f: Findings, figures: dict[str, str]) -> str:
    if not f.agreement:
        return missing("Fewer than two judges rated drafts in this run: no agreement to show.")
    rows = [
        [
            f"{p.judge_a} vs {p.judge_b}",
            k.what,
            k.n,
            "—" if k.value is None else f"{k.value:.3f}",
            k.note or "",
        ]
        for p in f.agreement
        for k in p.kappas
    ]
    parts = [
        '<p class="note">Cohen\'s kappa (unweighted) over drafts both judges rated: 1 is full '
        "agreement, 0 what chance alone gives.</p>",
        table("kappa", ["judges", "rating", "drafts", "kappa", "note"], rows),
    ]
    samples = sorted({p.sample for p in f.agreement if p.sample})
    parts[1:1] = [f'<p class="note" id="agreement-sample">Kappa {esc(n)}.</p>' for n in samples]
    for i, p in enumerate(f.agreement):
        parts.append(image(figures, f"agreement_{i}", f"{p.judge_a} vs {p.judge_b}"))
    return "".join(parts)


def _lengths(f: Findings, figures: dict[str, str]) -> str:
    if f.accepted.empty:
        return missing("No accepted problem in this run: no lengths to show.")
    note = "" if f.data.solutions is not None else missing("No distill/solutions in this run.")
    return image(figures, "lengths", "problem and solution lengths") + note


def _training(f: Findings, figures: dict[str, str]) -> str:
    curves = f.data.loss_curves
    if not curves:
        return missing("No training in this run (no models/<name>/loss_curve.csv).")
    rows = [
        [
            name,
            len(c),
            f"{c['loss'].iloc[0]:.4f}",
            f"{c['loss'].iloc[-1]:.4f}",
            float(c["tokens_per_s"].mean()) if "tokens_per_s" in c else None,
        ]
        for name, c in curves.items()
    ]
    headers = ["model", "steps", "first loss", "final loss", "mean tokens/s"]
    return image(figures, "loss", "training loss") + table("training", headers, rows)


def _evaluation(f: Findings) -> str:
    if not f.data.evals:
        return missing("No evaluation in this run (no eval/<name>/summary.json).")
    headers = ["evaluation", "model", "benchmark", "items", "runs", "accuracy (mean ± std)"]
    headers += ["mean reasoning tokens", "timeouts", "no answer"]
    rows = []
    for name, summary in f.data.evals.items():
        for bench, s in (summary.get("benchmarks") or {}).items():
            acc = f"{100 * s['accuracy_mean']:.1f} ± {100 * s['accuracy_std']:.1f}%"
            rows.append(
                [
                    name,
                    summary.get("model", ""),
                    bench,
                    s["items"],
                    s["runs"],
                    acc,
                    float(s["mean_reasoning_tokens"]),
                    s["timeouts"],
                    s["no_answer"],
                ]
            )
    parts = [table("eval", headers, rows)]
    difficulty = [
        [name, bench, pct(d["solve_rate"]), float(d["mean_reasoning_tokens"])]
        for name, summary in f.data.evals.items()
        for bench, d in (summary.get("difficulty") or {}).items()
    ]
    if difficulty:
        parts.append("<h3>Difficulty (lower solve rate, more reasoning tokens = harder)</h3>")
        headers = ["evaluation", "set", "solve rate", "mean reasoning tokens"]
        parts.append(table("difficulty", headers, difficulty))
    return "".join(parts)


def _ledger(f: Findings, figures: dict[str, str]) -> str:
    if f.ledger.empty:
        return missing("No ledger.jsonl in this run.")
    headers = ["job", "stage", "round", "rows in", "rows out", "rejected", "tokens in"]
    headers += ["tokens out", "seconds", "in = out + rejected"]
    rows = [
        [
            r.job,
            r.stage,
            _int(r.round),
            r.rows_in,
            r.rows_out,
            r.rejected,
            r.tokens_in,
            r.tokens_out,
            float(r.seconds),
            "yes" if r.reconciles else "NO",
        ]
        for r in f.ledger.itertuples()
    ]
    note = (
        '<p class="note">Synthesize generates and judges in one stream, so its generate and '
        "judge lines repeat the round's seconds; the plot counts them once, on the total line."
        "</p>"
    )
    return table("ledger", headers, rows) + note + image(figures, "cost", "cost per stage")


SECTIONS = (
    ("funnel", "Funnel and accept rate per round"),
    ("reasons", "Rejection reasons"),
    ("accepted", "Accepted problems"),
    ("agreement", "Judge agreement"),
    ("lengths", "Problem and solution lengths"),
    ("training", "Training"),
    ("evaluation", "Evaluation"),
    ("ledger", "Cost ledger"),
)


def render(f: Findings, figures: dict[str, str], generated_at: str) -> str:
    """The whole page; `figures` maps a figure name to its path relative to the page."""
    bodies = {
        "funnel": _funnel(f, figures),
        "reasons": _reasons(f, figures),
        "accepted": _accepted(f, figures),
        "agreement": _agreement(f, figures),
        "lengths": _lengths(f, figures),
        "training": _training(f, figures),
        "evaluation": _evaluation(f),
        "ledger": _ledger(f, figures),
    }
    nav = "".join(f'<a href="#{key}">{esc(title)}</a>' for key, title in SECTIONS)
    sections = "".join(
        f'<section id="{key}"><h2>{esc(title)}</h2>{bodies[key]}</section>'
        for key, title in SECTIONS
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>PromptCoT run report: {esc(f.data.uri)}</title><style>{CSS}</style></head>"
        f"<body><main><h1>PromptCoT run report</h1>"
        f'<p class="meta">{esc(f.data.uri)} · generated {esc(generated_at)}</p>'
        f"<nav>{nav}</nav>{sections}</main></body></html>\n"
    )
