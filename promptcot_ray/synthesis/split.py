"""Column-wise builders that split wide results rows into the four output tables.

Every function takes an Arrow table of results rows (one copy per combination) and returns
a table in its output schema using Arrow kernels only: finalize's cost is a few kernel calls
per batch of rows, not a Python dict per row.
"""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from promptcot_ray import records as R
from promptcot_ray.synthesis.config import JudgeConfig
from promptcot_ray.table_schemas import (
    ACCEPTED_SCHEMA,
    DRAFTS_SCHEMA,
    JUDGE_FIELD_TYPES,
    JUDGEMENTS_SCHEMA,
    REJECTED_SCHEMA,
    judge_column,
)

_NULL_STR = pa.scalar(None, pa.string())
# columns a filtered table keeps (filtering copies: never filter the wide text columns)
_GENERATOR = ["draft_id", "generator_model", "generator_prompt_version", "generation_seed"]


def _const(n: int, value: object, typ: pa.DataType) -> pa.Array:
    return pa.array([value], typ).take(pa.array(np.zeros(n, np.int32)))


def _one_parent(parent: pa.ChunkedArray | pa.Array) -> pa.Array:
    values = parent.combine_chunks() if isinstance(parent, pa.ChunkedArray) else parent
    offsets = pa.array(np.arange(len(values) + 1, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, values)


def _lineage(n: int, created: str, row_id, parents, stage, model, version, seed) -> dict:
    """The lineage columns; `stage` is a string for all rows or an array (one per row)."""
    return {
        R.ID: row_id,
        R.PARENT_IDS: parents,
        R.STAGE: _const(n, stage, pa.string()) if isinstance(stage, str) else stage,
        R.MODEL: model,
        R.PROMPT_VERSION: version,
        R.SEED: seed,
        R.SAMPLE_INDEX: _const(n, 0, pa.int64()),
        R.CREATED_AT: _const(n, created, pa.string()),
    }


def _in_schema(columns: dict, schema: pa.Schema) -> pa.Table:
    return pa.Table.from_arrays([columns[f.name] for f in schema], schema=schema)


def _generator_lineage(t: pa.Table, created: str, parents, stage) -> dict:
    return _lineage(
        t.num_rows,
        created,
        t["draft_id"],
        parents,
        stage,
        t["generator_model"],
        t["generator_prompt_version"],
        t["generation_seed"],
    )


def drafts_table(t: pa.Table, created: str) -> pa.Table:
    """One draft per results row (parsed or not), parent: its combination."""
    cols = _generator_lineage(t, created, _one_parent(t["combination_id"]), R.STAGE_GENERATE)
    for name in ("combination_index", "concepts", "level", "pool_version", "sampler_seed"):
        cols[name] = t[name]
    cols.update(text=t["draft_text"], rationale=t["rationale"], problem=t["problem"])
    cols.update(tokens_in=t["draft_tokens_in"], tokens_out=t["draft_tokens_out"])
    cols[R.STATUS], cols[R.REASON], cols[R.ERROR] = (
        t["draft_status"],
        t["draft_reason"],
        t["draft_error"],
    )
    return _in_schema(cols, DRAFTS_SCHEMA)


def judgements_table(t: pa.Table, judges: tuple[JudgeConfig, ...], created: str) -> pa.Table:
    """One row per (draft, judge) the draft reached; parent: the draft."""
    parts = [JUDGEMENTS_SCHEMA.empty_table()]
    for i, judge in enumerate(judges):
        names = ["draft_id", *(judge_column(i, f) for f in JUDGE_FIELD_TYPES)]
        sub = t.select(names).filter(pc.is_valid(t[judge_column(i, "status")]))
        c = lambda f, sub=sub, i=i: sub[judge_column(i, f)]  # noqa: E731
        n = sub.num_rows
        cols = _lineage(
            n,
            created,
            c("id"),
            _one_parent(sub["draft_id"]),
            R.STAGE_JUDGE,
            c("model"),
            c("prompt_version"),
            c("seed"),
        )
        cols.update(draft_id=sub["draft_id"], judge=_const(n, judge.name, pa.string()))
        for f in ("text", "verdict", "ratings", "source", "tokens_in", "tokens_out"):
            cols[f] = c(f)
        cols[R.STATUS], cols[R.REASON], cols[R.ERROR] = c("status"), c("reason"), c("error")
        parts.append(_in_schema(cols, JUDGEMENTS_SCHEMA))
    return pa.concat_tables(parts)


def _accepted_parents(t: pa.Table, num_judges: int) -> pa.Array:
    """[combination_id, id of every judgement made], one list per row, built with numpy."""
    n, k = t.num_rows, 1 + num_judges
    values = pa.concat_arrays(
        [t["combination_id"].combine_chunks()]
        + [t[judge_column(i, "id")].combine_chunks() for i in range(num_judges)]
    )
    present = np.ones((n, k), bool)
    for i in range(num_judges):
        present[:, 1 + i] = pc.is_valid(t[judge_column(i, "status")]).to_numpy()
    order = (np.arange(k)[None, :] * n + np.arange(n)[:, None]).reshape(-1)
    taken = values.take(pa.array(order[present.reshape(-1)]))
    offsets = np.concatenate([[0], np.cumsum(present.sum(axis=1))]).astype(np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), taken)


def _verdicts_json(t: pa.Table, judges: tuple[JudgeConfig, ...]) -> pa.Array:
    """`json.dumps({judge: verdict}, sort_keys=True)` per row, for the judges that judged it."""
    body = _const(t.num_rows, "", pa.string())
    for i, judge in sorted(enumerate(judges), key=lambda p: p[1].name):
        verdict = t[judge_column(i, "verdict")]
        escaped = pc.replace_substring(pc.replace_substring(verdict, "\\", "\\\\"), '"', '\\"')
        quoted = pc.fill_null(pc.binary_join_element_wise('"', escaped, '"', ""), "null")
        piece = pc.binary_join_element_wise(f"{json.dumps(judge.name)}: ", quoted, ", ", "")
        judged = pc.is_valid(t[judge_column(i, "status")])
        body = pc.binary_join_element_wise(body, pc.if_else(judged, piece, ""), "")
    # (pyarrow 26's null_handling="skip" drops rows where every input is null: not used)
    return pc.binary_join_element_wise("{", pc.replace_substring_regex(body, ", $", ""), "}", "")


def accepted_table(
    t: pa.Table, judges: tuple[JudgeConfig, ...], rnd: int, created: str
) -> pa.Table:
    """Accepted problems; parents: the combination and every judgement of the draft."""
    keep = ["combination_id", "concepts", "level", "rationale", "problem", *_GENERATOR]
    keep += [judge_column(i, f) for i in range(len(judges)) for f in ("id", "status", "verdict")]
    t = t.select(keep).filter(pc.fill_null(t["accepted"], False))
    parents = _accepted_parents(t, len(judges))
    cols = _generator_lineage(t, created, parents, R.STAGE_VERDICT)
    for name in ("combination_id", "concepts", "level", "rationale", "problem"):
        cols[name] = t[name]
    cols["verdicts"] = _verdicts_json(t, judges)
    cols["round"] = _const(t.num_rows, rnd, pa.int64())
    return _in_schema(cols, ACCEPTED_SCHEMA)


def rejected_table(t: pa.Table, created: str) -> pa.Table:
    """Rejected drafts, with the stage and judge that rejected them; parent: the combination."""
    keep = ["combination_id", "rejected_stage", "rejected_by", "draft_error", *_GENERATOR]
    t = t.select([*keep, R.STATUS, R.REASON]).filter(pc.invert(pc.fill_null(t["accepted"], False)))
    stage = t["rejected_stage"]
    cols = _generator_lineage(t, created, _one_parent(t["combination_id"]), stage)
    cols.update(combination_id=t["combination_id"], rejected_stage=stage)
    cols.update(rejected_by=t["rejected_by"])
    cols[R.STATUS], cols[R.REASON] = t[R.STATUS], t[R.REASON]
    generate = pc.fill_null(pc.equal(stage, R.STAGE_GENERATE), False)
    cols[R.ERROR] = pc.if_else(generate, t["draft_error"], _NULL_STR)
    return _in_schema(cols, REJECTED_SCHEMA)


def duplicates_table(combos: pa.Table, created: str) -> pa.Table:
    """Rejected rows for combinations dropped as duplicates before generation."""
    c = combos.filter(pc.equal(combos[R.STATUS], R.STATUS_FILTERED))
    n = c.num_rows
    cols = _lineage(
        n,
        created,
        c[R.ID],
        pa.ListArray.from_arrays(pa.array(np.zeros(n + 1, np.int32)), pa.array([], pa.string())),
        R.STAGE_COMBINATIONS,
        pa.nulls(n, pa.string()),
        pa.nulls(n, pa.string()),
        c[R.SEED],
    )
    cols[R.SAMPLE_INDEX] = c[R.SAMPLE_INDEX]
    cols.update(combination_id=c[R.ID], rejected_by=pa.nulls(n, pa.string()))
    cols["rejected_stage"] = _const(n, R.STAGE_COMBINATIONS, pa.string())
    cols[R.STATUS] = _const(n, R.STATUS_FILTERED, pa.string())
    cols[R.REASON], cols[R.ERROR] = c[R.REASON], pa.nulls(n, pa.string())
    return _in_schema(cols, REJECTED_SCHEMA)
