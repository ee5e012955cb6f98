"""Graded sample rows -> per-set accuracy (mean +- sample std over runs), tokens, timeouts.

Pure arithmetic on rows, so the numbers in summary.json can be checked by hand.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from promptcot_ray.solve.grading import GRADE_NO_ANSWER, GRADE_TIMEOUT, GRADE_UNPARSED


def summarize(rows: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per benchmark: accuracy per run, their mean and sample std, tokens, failure counts.

    Each run's accuracy is over all of that run's items (an unanswered item is wrong); the
    std is the sample standard deviation across runs (0 with one run).
    """
    by_set: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_set[row["benchmark"]].append(row)
    out: dict[str, dict[str, Any]] = {}
    for name, items in sorted(by_set.items()):
        per_run: dict[int, list[bool]] = defaultdict(list)
        for row in items:
            per_run[int(row["sample_index"])].append(bool(row["correct"]))
        accuracies = [sum(v) / len(v) for _, v in sorted(per_run.items())]
        tokens = [int(r["tokens_out"] or 0) for r in items if r.get("status") != "error"]
        out[name] = {
            "items": len({r["problem_id"] for r in items}),
            "runs": len(accuracies),
            "samples": len(items),
            "accuracy_per_run": accuracies,
            "accuracy_mean": statistics.fmean(accuracies),
            "accuracy_std": statistics.stdev(accuracies) if len(accuracies) > 1 else 0.0,
            "mean_reasoning_tokens": statistics.fmean(tokens) if tokens else 0.0,
            "timeouts": sum(1 for r in items if r["grade_status"] == GRADE_TIMEOUT),
            "no_answer": sum(1 for r in items if r["grade_status"] == GRADE_NO_ANSWER),
            "unparsed": sum(1 for r in items if r["grade_status"] == GRADE_UNPARSED),
            "truncated": sum(1 for r in items if r.get("finish_reason") == "length"),
            "engine_errors": sum(1 for r in items if r.get("status") == "error"),
        }
    return out
