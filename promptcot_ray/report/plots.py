"""The report's figures as PNG bytes (matplotlib, Agg backend: no display needed).

Every figure has a title and labelled axes; counts are written on the bars, so a reader
does not have to estimate them from a log scale.
"""

from __future__ import annotations

import io
import textwrap

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter, MaxNLocator

from promptcot_ray.report.agreement import PairAgreement
from promptcot_ray.report.metrics import FUNNEL_STEPS, Coverage

DPI = 100
LOG_RATIO = 50  # bars spanning more than this factor get a log axis


def figure(width: float, height: float, cols: int = 1) -> tuple[Figure, list]:
    """A figure with `cols` axes side by side. A bare Figure renders with Agg and keeps no
    global pyplot state, so no display is needed and nothing has to be closed."""
    fig = Figure(figsize=(width, height))
    axes = fig.subplots(1, cols, squeeze=False)[0]
    return fig, list(axes)


def to_png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    return buf.getvalue()


def _short(text: str, width: int = 48) -> str:
    return textwrap.shorten(text, width=width, placeholder="...")


def _label_bars(ax, bars) -> None:
    """Write each bar's count above it; a zero goes on the axis line (also on a log axis)."""
    for bar in bars:
        height = bar.get_height()
        x = bar.get_x() + bar.get_width() / 2
        ax.annotate(
            f"{int(height)}",
            (x, height) if height > 0 else (x, 0),
            xycoords="data" if height > 0 else ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=8,
            xytext=(0, 2),
            textcoords="offset points",
        )


def funnel_plot(table: pd.DataFrame) -> bytes:
    """Grouped bars: rows left after each step, one colour per round."""
    steps = [(key, label) for key, label in FUNNEL_STEPS if table[key].notna().any()]
    fig, (ax,) = figure(10, 4.5)
    x = np.arange(len(steps))
    width = 0.8 / max(1, len(table))
    values, drawn = [], []
    for i, (_, row) in enumerate(table.iterrows()):
        heights = [float(row[key]) if pd.notna(row[key]) else 0.0 for key, _ in steps]
        values += heights
        bars = ax.bar(x + (i - (len(table) - 1) / 2) * width, heights, width, label=row["round"])
        drawn.append(bars)
    positive = [v for v in values if v > 0]
    if positive and max(positive) / min(positive) > LOG_RATIO:
        ax.set_yscale("log")
        ax.set_ylabel("rows (log scale)")
    else:
        ax.set_ylabel("rows")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    for bars in drawn:  # after the scale is set, so labels land where the bars end
        _label_bars(ax, bars)
    ax.set_xticks(x, ["\n".join(textwrap.wrap(label, 14)) for _, label in steps], fontsize=9)
    ax.set_xlabel("pipeline step")
    ax.set_title("Funnel per synthesis round")
    ax.legend(title="round")
    ax.margins(y=0.15)
    return to_png(fig)


def _barh(ax, labels: list[str], values: list[float], color=None) -> None:
    y = np.arange(len(labels))
    bars = ax.barh(y, values, color=color)
    ax.set_yticks(y, labels, fontsize=9)
    ax.invert_yaxis()  # largest first, read top-down
    for bar, value in zip(bars, values, strict=True):
        ax.annotate(
            f"{int(value)}",
            (bar.get_width(), bar.get_y() + bar.get_height() / 2),
            va="center",
            fontsize=8,
            xytext=(3, 0),
            textcoords="offset points",
        )
    ax.margins(x=0.12)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def reasons_plot(reasons: pd.DataFrame) -> bytes:
    """Horizontal bars of removed rows per (step, reason), summed over rounds."""
    totals = reasons.groupby(["step", "reason"], sort=False)["rows"].sum().sort_values()[::-1]
    labels = [f"{step}: {reason}" for step, reason in totals.index]
    steps = [step for step, _ in totals.index]
    palette = dict(zip(dict.fromkeys(steps), matplotlib.colormaps["tab10"].colors, strict=False))
    fig, (ax,) = figure(10, 0.9 + 0.35 * len(labels))
    _barh(ax, labels, totals.tolist(), [palette[s] for s in steps])
    ax.set_xlabel("rows removed")
    ax.set_title("Rejection and removal reasons (all rounds)")
    return to_png(fig)


def levels_plot(levels: pd.DataFrame) -> bytes:
    """Stacked bars: accepted problems per difficulty level, one colour per round."""
    fig, (ax,) = figure(10, 4)
    bottom = np.zeros(len(levels))
    for rnd in levels.columns:
        ax.bar(levels.index, levels[rnd], bottom=bottom, label=rnd)
        bottom += levels[rnd].to_numpy()
    for i, total in enumerate(bottom):
        ax.annotate(f"{int(total)}", (i, total), ha="center", va="bottom", fontsize=8)
    ax.set_xlabel("difficulty level (requested in the prompt)")
    ax.set_ylabel("accepted problems")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Accepted problems by difficulty level")
    ax.legend(title="round")
    ax.margins(y=0.12)
    return to_png(fig)


def coverage_plot(cov: Coverage) -> bytes:
    """Horizontal bars: the concepts that appear in the most accepted problems."""
    fig, (ax,) = figure(10, 0.9 + 0.35 * len(cov.top))
    _barh(ax, [_short(c) for c, _ in cov.top], [n for _, n in cov.top])
    ax.set_xlabel("accepted problems using the concept")
    share = f" of {cov.pool_size} in the pool" if cov.pool_size else ""
    ax.set_title(f"Most frequent concepts ({cov.distinct} distinct{share})")
    return to_png(fig)


def confusion_plot(pair: PairAgreement) -> bytes:
    """Heat map of verdict counts: judge a's verdict (rows) against judge b's (columns)."""
    matrix = pair.confusion.to_numpy()
    fig, (ax,) = figure(5, 4.2)
    image = ax.imshow(matrix, cmap="Blues")
    levels = [str(c) for c in pair.confusion.columns]
    ax.set_xticks(range(len(levels)), levels)
    ax.set_yticks(range(len(levels)), [str(i) for i in pair.confusion.index])
    peak = matrix.max() if matrix.size else 0
    for (i, j), n in np.ndenumerate(matrix):
        color = "white" if peak and n > peak / 2 else "black"
        ax.text(j, i, str(n), ha="center", va="center", color=color)
    ax.set_xlabel(f"verdict of judge {pair.judge_b}")
    ax.set_ylabel(f"verdict of judge {pair.judge_a}")
    ax.set_title(f"Verdicts: {pair.judge_a} vs {pair.judge_b}")
    fig.colorbar(image, ax=ax, label="drafts")
    return to_png(fig)


def lengths_plot(problem_words: pd.Series, solution_tokens: pd.DataFrame | None) -> bytes:
    """Histograms: accepted problem length in words; teacher solution length in tokens."""
    panels = 2 if solution_tokens is not None and len(solution_tokens) else 1
    fig, axes = figure(10 if panels == 2 else 6, 4, panels)
    ax = axes[0]
    ax.hist(problem_words.astype(float), bins=20, color="tab:blue")
    ax.set_xlabel("words (whitespace-separated)")
    ax.set_ylabel("accepted problems")
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_title("Problem length (accepted, all rounds)")
    if panels == 2:
        ax = axes[1]
        for valid, label, color in ((True, "valid", "tab:green"), (False, "rejected", "tab:red")):
            tokens = solution_tokens.loc[solution_tokens["valid"] == valid, "tokens_out"]
            if len(tokens):
                ax.hist(tokens.astype(float), bins=20, alpha=0.6, label=label, color=color)
        ax.set_xlabel("generated tokens")
        ax.set_ylabel("teacher solutions")
        ax.yaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title("Distilled solution length")
        ax.legend()
    fig.tight_layout()
    return to_png(fig)


def loss_plot(curves: dict[str, pd.DataFrame]) -> bytes:
    """Training loss per optimizer step, one line per model."""
    fig, (ax,) = figure(10, 4)
    for name, curve in curves.items():
        ax.plot(curve["step"], curve["loss"], marker="." if len(curve) < 50 else None, label=name)
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("loss (completion tokens)")
    ax.set_title("Training loss")
    ax.legend(title="model")
    ax.grid(alpha=0.3)
    return to_png(fig)


def cost_plot(ledger: pd.DataFrame) -> bytes:
    """Two panels: tokens in/out per stage; seconds per stage (each counted once)."""
    names = [
        f"{r.job} / {r.stage}" + (f" / round {int(r.round)}" if pd.notna(r.round) else "")
        for r in ledger.itertuples()
    ]
    ledger = ledger.assign(name=[_short(n, 40) for n in names])
    fig, (left, right) = figure(12, 0.9 + 0.35 * len(ledger), 2)
    y = np.arange(len(ledger))
    left.barh(y, ledger["tokens_in"], label="tokens in")
    left.barh(y, ledger["tokens_out"], left=ledger["tokens_in"], label="tokens out")
    left.set_yticks(y, ledger["name"], fontsize=9)
    left.invert_yaxis()
    left.set_xlabel("tokens")
    left.xaxis.set_major_formatter(EngFormatter(sep=""))  # 80k, not 80000
    left.set_title("Tokens per stage")
    left.legend()
    seconds = ledger["seconds"].where(~ledger["shared_seconds"], 0.0)
    right.barh(y, seconds, color="tab:purple")
    right.set_yticks(y, [""] * len(y))
    right.invert_yaxis()
    right.set_xlabel("seconds (synthesize: its total line)")
    right.set_title("Wall-clock seconds per stage")
    fig.tight_layout()
    return to_png(fig)
