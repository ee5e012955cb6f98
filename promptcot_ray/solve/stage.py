"""The solve stage shared by distill (teacher samples) and evaluate (model runs).

Rows in: `problem_id`, `problem`, `sample_index` plus any carried columns. Rows out: the
solution text, its checked answer (or rejection reason), the finish reason and token counts,
with lineage. One implementation, so a teacher's solution and an evaluated model's answer are
extracted by exactly the same rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from promptcot_ray import records as R
from promptcot_ray.config import LLMConfig
from promptcot_ray.llm.engine import INFERENCE_ERROR_COLUMN, finish_reason, sampling_params
from promptcot_ray.prompts import solve as solve_prompt
from promptcot_ray.solve.grading import extract_boxed
from promptcot_ray.solve.solutions import REASON_ERROR, THINK_CLOSE, check_solution


def check_generation_settings(run: Any, rel: str, llm: LLMConfig, instruction: str) -> None:
    """Refuse to mix samples of two sampling setups under `rel` (their ids would collide:
    an id covers model, seed and sample index, not temperature or the token budget)."""
    from promptcot_ray.config import ConfigError

    settings = {
        "model": llm.model,
        "seed": llm.seed,
        "temperature": llm.temperature,
        "top_p": llm.top_p,
        "max_tokens": llm.max_tokens,
        "instruction": instruction,
        **({"export": llm.export} if llm.export else {}),  # a retrained run: model differs
    }
    marker = f"{rel}/_SETTINGS.json"
    if run.exists(marker) and (old := run.read_json(marker)) != settings:
        changed = sorted(k for k in settings if old.get(k) != settings[k])
        raise ConfigError(
            f"{run.uri_of(rel)} holds samples made with other settings ({', '.join(changed)}); "
            "use another run_dir (or eval name), or delete that folder to start over"
        )
    run.write_json(marker, settings)


def solve_seed_and_id(llm: LLMConfig, stage: str, problem_id: str, sample: int) -> tuple:
    """(sampling seed, row id) of one sample: the same on the driver (resume) and in workers."""
    seed = R.derive_seed(llm.seed, f"{problem_id}:{sample}")
    return seed, R.make_id(stage, problem_id, llm.model, solve_prompt.VERSION, seed, sample)


class BuildSolveRequest:
    """Preprocess: a problem and a sample index -> the solve prompt with a per-sample seed."""

    def __init__(self, llm: LLMConfig, stage: str, instruction: str, carried: Sequence[str]):
        self.llm, self.stage, self.instruction = llm, stage, instruction
        self.carried = tuple(carried)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        sample = int(row["sample_index"])
        seed, rid = solve_seed_and_id(self.llm, self.stage, row["problem_id"], sample)
        return {
            **R.lineage(
                rid,
                [row["problem_id"]],
                self.stage,
                self.llm.model,
                solve_prompt.VERSION,
                seed,
                sample,
            ),
            "problem_id": row["problem_id"],
            "problem": row["problem"],
            **{c: row.get(c) for c in self.carried},
            "messages": solve_prompt.build_solve_messages(row["problem"], self.instruction),
            "sampling_params": sampling_params(self.llm, seed),
        }


def final_answer(text: str) -> str | None:
    """The answer a grader reads: the last boxed answer after </think> (or anywhere)."""
    return extract_boxed(text.rsplit(THINK_CLOSE, 1)[-1])


class CollectSolution:
    """Postprocess: check the solution and extract its answers."""

    def __init__(self, max_tokens: int, carried: Sequence[str]) -> None:
        self.max_tokens, self.carried = max_tokens, tuple(carried)

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        text = row.get("generated_text") or ""
        finish = finish_reason(row, self.max_tokens)
        checked = check_solution(text, finish)
        return {
            **{k: row.get(k) for k in R.LINEAGE_COLUMNS},
            "problem_id": row["problem_id"],
            "problem": row["problem"],
            **{c: row.get(c) for c in self.carried},
            "text": text,
            "answer": checked.answer,
            "final_answer": final_answer(text) if finish != "length" else None,
            "finish_reason": finish,
            "think_opened_by_prompt": checked.think_opened_by_prompt,
            "tokens_in": int(row.get("num_input_tokens") or 0),
            "tokens_out": int(row.get("num_generated_tokens") or 0),
            R.STATUS: R.STATUS_OK if checked.reason is None else R.STATUS_FILTERED,
            R.REASON: checked.reason,
            R.ERROR: None,
        }


class SettleSolution:
    """After the processor: engine failures become counted errors with the same columns."""

    def __init__(self, schema: pa.Schema) -> None:
        self.names = schema.names

    def __call__(self, row: dict[str, Any]) -> dict[str, Any]:
        error = row.get(INFERENCE_ERROR_COLUMN) or ""
        if not error:
            return {k: row.get(k) for k in self.names}
        out = {k: row.get(k) for k in self.names}
        out.update(
            text=None,
            answer=None,
            final_answer=None,
            tokens_in=0,
            tokens_out=0,
            status=R.STATUS_ERROR,
            reason=REASON_ERROR,
            error=R.format_error(error),
        )
        return out


def expand_samples(problems: pa.Table, samples: int, llm: LLMConfig, stage: str) -> pa.Table:
    """One row per (problem, sample_index) with its output id: the engine's unit of work and
    the resume key (a sample whose id is written is not generated again)."""
    n = problems.num_rows
    out = problems.take(pa.array([i for i in range(n) for _ in range(samples)], pa.int64()))
    indices = [s for _ in range(n) for s in range(samples)]
    ids = [
        solve_seed_and_id(llm, stage, pid, s)[1]
        for pid, s in zip(out.column("problem_id").to_pylist(), indices, strict=True)
    ]
    out = out.append_column("sample_index", pa.array(indices, pa.int64()))
    return out.append_column("id", pa.array(ids, pa.string()))
