"""Per problem: valid solutions -> pseudo-label and confidence -> the chosen SFT rows.

Runs as a Ray Data `groupby("problem_id").map_groups(...)`, so the solutions of 400k
problems never have to fit on the driver; each actor keeps one math-verify process pool.
"""

from __future__ import annotations

import json
import random
from typing import Any

import pyarrow as pa

from promptcot_ray import records as R
from promptcot_ray.distill.labels import majority_label, rejection
from promptcot_ray.prompts import solve as solve_prompt
from promptcot_ray.resume import finished_rows
from promptcot_ray.solve.solutions import full_solution
from promptcot_ray.table_schemas import LABEL_SCHEMA, SFT_SCHEMA

STAGE_LABEL = "pseudo_label"
STAGE_SFT = "distill_sft"

# what map_groups returns: a label row with its SFT rows nested (split by the job)
GROUP_SCHEMA = LABEL_SCHEMA.append(pa.field("sft", pa.list_(pa.struct(list(SFT_SCHEMA)))))


def choose(agreeing: list[dict[str, Any]], select: str, problem_id: str) -> list[dict]:
    """The agreeing solutions that become SFT rows.

    `random` (the default) draws one, seeded by the problem id, so a rerun picks the same;
    `shortest` would bias students toward short reasoning, which is why it is not the default.
    """
    ordered = sorted(agreeing, key=lambda r: r[R.ID])  # arrival order must not matter
    if select == "all":
        return ordered
    if select == "random":
        return [random.Random(problem_id).choice(ordered)]
    return [min(ordered, key=lambda r: (r["tokens_out"], r[R.ID]))]


class LabelProblem:
    """map_groups callable: one problem's solutions -> one GROUP_SCHEMA row."""

    def __init__(
        self,
        min_confidence: float,
        select: str,
        instruction: str,
        timeout_s: float,
        min_valid: int = 1,
    ) -> None:
        from promptcot_ray.solve.grading import GradingPool

        self.min_confidence, self.select, self.instruction = min_confidence, select, instruction
        self.min_valid = min_valid
        self.pool = GradingPool(processes=1, timeout_s=timeout_s)

    def __call__(self, group: pa.Table) -> pa.Table:
        rows = finished_rows(group, R.ID).to_pylist()
        rows.sort(key=lambda r: r[R.ID])
        first = rows[0]
        valid = [r for r in rows if r[R.STATUS] == R.STATUS_OK and r["answer"]]
        # confidence over every sample: cut-off and malformed ones count against the label
        result = majority_label([r["answer"] for r in valid], self.pool.grade, len(rows))
        reason = rejection(result, self.min_valid, self.min_confidence)
        label_id = R.make_id(
            STAGE_LABEL, first["problem_id"], first[R.MODEL], [r[R.ID] for r in rows]
        )
        sft = []
        if reason is None:
            agreeing = [valid[i] for i in result.agreeing]
            prompt = json.dumps(
                solve_prompt.build_solve_messages(first["problem"], self.instruction)
            )
            for sol in choose(agreeing, self.select, first["problem_id"]):
                sft.append(
                    {
                        **R.lineage(
                            R.make_id(STAGE_SFT, first["problem_id"], sol[R.ID]),
                            [first["problem_id"], sol[R.ID]],
                            STAGE_SFT,
                            sol[R.MODEL],
                            solve_prompt.VERSION,
                            sol[R.SEED],
                            sol[R.SAMPLE_INDEX],
                        ),
                        "problem_id": first["problem_id"],
                        "solution_id": sol[R.ID],
                        "prompt": prompt,
                        "completion": full_solution(sol["text"], sol["think_opened_by_prompt"]),
                        "label": result.label,
                        "tokens_out": sol["tokens_out"],
                    }
                )
        row = {
            **R.lineage(
                label_id,
                [r[R.ID] for r in rows],
                STAGE_LABEL,
                first[R.MODEL],
                solve_prompt.VERSION,
                None,
                None,
            ),
            "problem_id": first["problem_id"],
            "problem": first["problem"],
            "label": result.label if reason is None else None,
            "confidence": result.confidence,
            "valid_solutions": len(valid),
            "samples": len(rows),
            "answer_groups": result.groups,
            R.STATUS: R.STATUS_OK if reason is None else R.STATUS_FILTERED,
            R.REASON: reason,
            R.ERROR: None,
            "sft": sft,
        }
        return pa.Table.from_pylist([row], schema=GROUP_SCHEMA)
