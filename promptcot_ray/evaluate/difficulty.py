"""The method's difficulty measures of a problem set: a strong model's solve rate and a
reasoning model's mean reasoning tokens (METHOD.md step 12).

The solver can be a fixed strong model (the paper: Qwen2.5-Math-72B-Instruct), so sets
evaluated against different students stay comparable; by default it is the evaluated model.
Reasoning tokens are counted inside the think block only: the answer written after
</think> is not reasoning, and counting it would favour verbose answers.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from promptcot_ray import records as R
from promptcot_ray.solve.solutions import THINK_CLOSE, THINK_OPEN
from promptcot_ray.storage import RunDir

STAGE_SOLVER = "difficulty_solve"
REASONING_COLUMN = "reasoning_tokens"


def think_text(text: str | None, opened_by_prompt: bool) -> str:
    """The reasoning inside the think block; a block never closed (cut off) is all reasoning.

    A reply with no think block at all (a model that does not reason aloud) has none.
    """
    if not text:
        return ""
    if THINK_CLOSE in text:
        inside = text.split(THINK_CLOSE, 1)[0]
        return inside.split(THINK_OPEN, 1)[1] if THINK_OPEN in inside else inside
    if THINK_OPEN in text:
        return text.split(THINK_OPEN, 1)[1]
    return text if opened_by_prompt else ""


def count_reasoning_tokens(tokenizer: Any, texts: list, opened: list) -> list[int]:
    """Tokens inside each reply's think block, as the model's tokenizer splits them."""
    parts = [think_text(t, bool(o)) for t, o in zip(texts, opened, strict=True)]
    ids = tokenizer(parts, add_special_tokens=False).input_ids if parts else []
    return [len(x) if p else 0 for x, p in zip(ids, parts, strict=True)]


class CountReasoning:
    """map_batches callable: add `reasoning_tokens` to generation rows (tokenizer per actor)."""

    def __init__(self, location: str, storage: Any) -> None:
        from promptcot_ray.llm.stops import load_tokenizer, tokenizer_location

        self.tokenizer = load_tokenizer(tokenizer_location(location, storage))

    def __call__(self, batch: pa.Table) -> pa.Table:
        counts = count_reasoning_tokens(
            self.tokenizer,
            batch.column("text").to_pylist(),
            batch.column("think_opened_by_prompt").to_pylist(),
        )
        return batch.append_column(REASONING_COLUMN, pa.array(counts, pa.int64()))


def mean_reasoning_tokens(
    run: RunDir, rel: str, llm: Any, storage: Any, ids: pa.Array, actors: int = 2
) -> dict:
    """Per set, the mean think-block tokens of the finished generations `ids` under `rel`
    (tokenised on a pool of at most `actors`)."""
    import ray

    from promptcot_ray.llm_stage import HELPER_CPUS

    files = [run.path(f) for f in run.list_files(rel, ".parquet")]
    columns = [R.ID, R.STATUS, "benchmark", "text", "think_opened_by_prompt"]
    ds = ray.data.read_parquet(files, filesystem=run.fs, columns=columns, num_cpus=HELPER_CPUS)
    counted = ds.map_batches(
        _KeepFinished,
        fn_constructor_args=(ids,),
        batch_format="pyarrow",
        num_cpus=HELPER_CPUS,
    ).map_batches(
        CountReasoning,
        fn_constructor_args=(llm.source, storage),
        batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
        num_cpus=HELPER_CPUS,
    )
    means = counted.groupby("benchmark").mean(REASONING_COLUMN).take_all()
    return {r["benchmark"]: float(r[f"mean({REASONING_COLUMN})"]) for r in means}


class _KeepFinished:
    """map_batches callable: only this config's samples, without engine errors."""

    def __init__(self, ids: pa.Array) -> None:
        self.ids = ids

    def __call__(self, batch: pa.Table) -> pa.Table:
        mine = pc.is_in(batch[R.ID], value_set=self.ids)
        ok = pc.not_equal(batch[R.STATUS], R.STATUS_ERROR)
        return batch.filter(pc.and_(mine, ok))


def measure(cfg: Any, run: RunDir, items: pa.Table, base: str, benchmarks: dict) -> dict:
    """Per set: solve rate (of `solver`, else the model) and mean think-block tokens (of
    `reasoner`, else the model), with the names of the models that measured them."""
    from promptcot_ray.evaluate import job
    from promptcot_ray.evaluate.summary import summarize
    from promptcot_ray.resume import finished_of

    solve = {k: v["accuracy_mean"] for k, v in benchmarks.items()}
    if cfg.solver is not None:
        done = job.generate(
            cfg, cfg.solver, items, cfg.solver_runs, STAGE_SOLVER, run, f"{base}/solver"
        )
        job.grade(cfg, run, f"{base}/solver", f"{base}/solver-samples")
        graded = run.read_table(f"{base}/solver-samples", job.SUMMARY_COLUMNS)
        rows = finished_of(graded, done.column(R.ID)).to_pylist()
        solve = {k: v["accuracy_mean"] for k, v in summarize(rows).items()}
    reasoner, rel, ids = cfg.model, f"{base}/generations", None
    if cfg.reasoner is not None:
        reasoner, rel = cfg.reasoner, f"{base}/reasoner"
        done = job.generate(cfg, reasoner, items, cfg.reasoner_runs, job.STAGE_REASONER, run, rel)
        ids = done.column(R.ID).combine_chunks()
    if ids is None:
        samples = job.expand_samples(items, cfg.runs, cfg.model, job.STAGE_EVAL)
        ids = samples.column(R.ID).combine_chunks()
    pools = cfg.ray.actor_pools
    tokens = mean_reasoning_tokens(run, rel, reasoner, cfg.storage, ids, pools.grading)
    solver = (cfg.solver or cfg.model).model
    return {
        k: {
            "solve_rate": solve.get(k, 0.0),
            "mean_reasoning_tokens": tokens.get(k, 0.0),
            "solver": solver,
            "reasoner": reasoner.model,
        }
        for k in benchmarks
    }
