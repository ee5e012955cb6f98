"""Preference pairs from distillation: an agreeing solution (chosen) vs a disagreeing one.

This is the shape of PromptCoT 2.0's self-play data for math, where a verifiable answer
decides which of two solutions is better: per problem with a confident pseudo-label, the
chosen solution is the distill job's SFT pick (it agrees with the label by construction) and
the rejected one is a valid solution (think block + boxed answer) whose answer math-verify
finds NOT equivalent to the label. Fail closed: a comparison that timed out or errored is
not evidence of disagreement, so that solution is never used as `rejected`.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from promptcot_ray import records as R
from promptcot_ray.export.rows import match, messages, solve_text
from promptcot_ray.solve.grading import GRADE_OK, GradingPool
from promptcot_ray.solve.solutions import THINK_OPEN


def first_per_key(table: pa.Table, key: str, order: list[tuple[str, str]]) -> pa.Table:
    """The first row of each `key` group under the sort `order` (deterministic pick)."""
    table = table.sort_by([(key, "ascending"), *order])
    index = pa.array(np.arange(table.num_rows))
    firsts = pa.table({"k": table[key], "i": index}).group_by("k").aggregate([("i", "min")])
    return table.take(firsts["i_min"].take(pc.sort_indices(firsts["i_min"])))


def completion_text(solutions: pa.Table) -> pa.ChunkedArray:
    """distill.solutions.full_solution, column-wise: restore the <think> the prompt opened."""
    reopened = pc.binary_join_element_wise(
        pa.scalar(THINK_OPEN + "\n"), pc.utf8_ltrim_whitespace(solutions["text"]), ""
    )
    return pc.if_else(solutions["think_opened_by_prompt"], reopened, solutions["text"])


def disagreeing(candidates: pa.Table, grader: GradingPool) -> pa.Array:
    """Mask of candidates whose answer is graded not equivalent to their problem's label."""
    pairs = pa.table({"a": candidates["answer"], "l": candidates["label"]})
    distinct = pairs.group_by(["a", "l"]).aggregate([])
    items = [(a, label, "math") for a, label in zip(*distinct.to_pydict().values(), strict=True)]
    grades = grader.grade(items)  # one comparison per distinct (answer, label) pair
    differs = pa.array([g.status == GRADE_OK and not g.correct for g in grades], pa.bool_())
    keyed = pc.binary_join_element_wise(distinct["a"], distinct["l"], "\x00")
    mine = pc.binary_join_element_wise(candidates["answer"], candidates["label"], "\x00")
    return differs.take(pc.index_in(mine, value_set=keyed))


# The small columns that decide the pairs; the long texts are read for the picked rows only.
SFT_KEYS = [R.ID, "problem_id", "solution_id", "tokens_out"]
SOLUTION_KEYS = [R.ID, "problem_id", R.STATUS, "answer", R.MODEL]


def pick_pairs(
    labelled: pa.Table, sft: pa.Table, solutions: pa.Table, grader: GradingPool
) -> pa.Table:
    """Per labelled problem with both kinds: the chosen SFT row and the rejected solution."""
    chosen = first_per_key(
        sft, "problem_id", [("tokens_out", "ascending"), ("solution_id", "ascending")]
    )
    mask, pos = match(solutions["problem_id"], labelled[R.ID])
    sols = solutions.filter(mask).append_column("label", labelled["label"].take(pos))
    valid = pc.and_(pc.equal(sols[R.STATUS], R.STATUS_OK), pc.is_valid(sols["answer"]))
    sols = sols.filter(valid)
    sols = sols.filter(pc.not_equal(sols["answer"], sols["label"]))  # equal strings agree
    rejected = sols.filter(disagreeing(sols, grader)) if sols.num_rows else sols
    rejected = first_per_key(rejected, "problem_id", [(R.ID, "ascending")])
    chosen_ids = chosen["problem_id"].combine_chunks()
    rejected_ids = rejected["problem_id"].combine_chunks()
    has_both = pc.and_(
        pc.is_in(labelled[R.ID], value_set=chosen_ids),
        pc.is_in(labelled[R.ID], value_set=rejected_ids),
    )
    problems = labelled.filter(has_both)  # in the final problems' order
    c = chosen.take(pc.index_in(problems[R.ID], value_set=chosen_ids))
    r = rejected.take(pc.index_in(problems[R.ID], value_set=rejected_ids))
    return pa.table(
        {
            R.ID: problems[R.ID],
            "problem": problems["problem"],
            "label": problems["label"],
            "rejected_answer": r["answer"],
            "chosen_sft_id": c[R.ID],
            "chosen_id": c["solution_id"],
            "rejected_id": r[R.ID],
            "model": r[R.MODEL],
            "level": problems["level"],
            "confidence": problems["confidence"],
        }
    )


def pairs_table(
    picked: pa.Table, chosen_text: pa.Table, rejected_text: pa.Table, instruction: str
) -> pa.Table:
    """(prompt, chosen, rejected) chats; `*_text` hold the picked rows' texts by id."""
    c = chosen_text.take(pc.index_in(picked["chosen_sft_id"], value_set=chosen_text[R.ID]))
    r = rejected_text.take(pc.index_in(picked["rejected_id"], value_set=rejected_text[R.ID]))
    chats = {
        "prompt": messages(("user", solve_text(picked["problem"], instruction))),
        "chosen": messages(("assistant", c["completion"])),
        "rejected": messages(("assistant", completion_text(r))),
    }
    rest = picked.drop_columns(["problem", "chosen_sft_id"])
    return pa.table({R.ID: rest[R.ID], **chats, **{n: rest[n] for n in rest.schema.names[1:]}})
