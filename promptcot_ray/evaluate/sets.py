"""Load evaluation sets (files, run-directory datasets, Hugging Face) as uniform rows."""

from __future__ import annotations

import re

import pyarrow as pa
import pyarrow.compute as pc

from promptcot_ray import records as R
from promptcot_ray.config import ConfigError, StorageConfig
from promptcot_ray.evaluate.config import EvalSet
from promptcot_ray.solve.grading import extract_boxed
from promptcot_ray.sources import read_hf, read_rows
from promptcot_ray.storage import RunDir

ITEM_SCHEMA = pa.schema(
    [
        ("problem_id", pa.string()),
        ("problem", pa.string()),
        ("benchmark", pa.string()),
        ("reference", pa.string()),
        ("compare", pa.string()),
    ]
)


def reference_answer(raw: object) -> str | None:
    """The final answer of a reference: after GSM8K's '####', inside \\boxed{}, or as is."""
    if raw is None:
        return None
    text = str(raw).strip()
    if "####" in text:
        return text.rsplit("####", 1)[1].strip()
    return extract_boxed(text) or text or None


def load_set(spec: EvalSet, storage: StorageConfig, run: RunDir) -> pa.Table:
    """ITEM_SCHEMA rows of one set; rows without a problem or a reference are dropped."""
    label = f"benchmarks[{spec.name}]"
    if spec.path:
        table = read_rows(spec.path, storage, run, label)
    else:
        table = read_hf(label, spec.hf_dataset, spec.hf_config, spec.hf_split)
    if R.STATUS in table.schema.names:  # a job's output (distill/labels): its ok rows
        table = table.filter(pc.fill_null(pc.equal(table[R.STATUS], R.STATUS_OK), False))
    for column in (spec.problem_column, spec.answer_column):
        if column not in table.schema.names:
            raise ConfigError(
                f"benchmarks[{spec.name}]: no column {column!r}; columns: {table.schema.names}"
            )
    if spec.limit:
        table = table.slice(0, spec.limit)
    problems = table.column(spec.problem_column).to_pylist()
    answers = [reference_answer(a) for a in table.column(spec.answer_column).to_pylist()]
    if spec.id_column and spec.id_column in table.schema.names:
        ids = [str(x) for x in table.column(spec.id_column).to_pylist()]
    else:
        ids = [str(i) for i in range(table.num_rows)]
    rows = [
        {
            "problem_id": R.make_id("eval-item", spec.name, item_id, problem),
            "problem": re.sub(r"\s+\n", "\n", str(problem)),
            "benchmark": spec.name,
            "reference": answer,
            "compare": spec.compare,
        }
        for item_id, problem, answer in zip(ids, problems, answers, strict=True)
        if problem and answer
    ]
    return pa.Table.from_pylist(rows, schema=ITEM_SCHEMA)
