"""One description per default benchmark (decontamination reports the ids evaluation uses),
math-verify's empty parse graded apart, and which training failures count as a user's or the
cluster's (re-run to resume) rather than a bug (traceback)."""

from __future__ import annotations

import json

import pytest

from promptcot_ray.config import StorageConfig
from promptcot_ray.evaluate.config import DEFAULT_EVAL_SETS
from promptcot_ray.evaluate.sets import load_set
from promptcot_ray.quality.config import DEFAULT_BENCHMARKS
from promptcot_ray.quality.decontam import build_index, first_hits
from promptcot_ray.quality.normalize import words
from promptcot_ray.quality.references import load_benchmark
from promptcot_ray.solve.grading import (
    GRADE_OK,
    GRADE_UNPARSED,
    GradingPool,
    extract_boxed,
    is_equivalent,
)
from promptcot_ray.storage import RunDir

# Two rows as HuggingFaceH4/MATH-500 holds them: the id is `unique_id`, there is no `id`.
MATH500_ROWS = [
    {
        "problem": "Convert the point $(0,3)$ in rectangular coordinates to polar coordinates. "
        "Enter your answer in the form $(r,\\theta),$ where $r > 0$ and $0 \\le \\theta < 2 \\pi.$",
        "solution": "...",
        "answer": "\\left( 3, \\frac{\\pi}{2} \\right)",
        "subject": "Precalculus",
        "level": 2,
        "unique_id": "test/precalculus/807.json",
    },
    {
        "problem": "If $f(x) = \\frac{3x-2}{x-2}$, what is the value of $f(-2) +f(-1)+f(0)$? "
        "Express your answer as a common fraction.",
        "solution": "...",
        "answer": "\\frac{14}{3}",
        "subject": "Algebra",
        "level": 3,
        "unique_id": "test/algebra/903.json",
    },
]


def _by_name(sets, name):
    return next(s for s in sets if s.name == name)


def test_both_jobs_describe_every_default_benchmark_the_same_way():
    assert [b.name for b in DEFAULT_BENCHMARKS] == [s.name for s in DEFAULT_EVAL_SETS]
    for source in DEFAULT_BENCHMARKS:
        eval_set = _by_name(DEFAULT_EVAL_SETS, source.name)
        for key in ("hf_dataset", "hf_config", "hf_split", "problem_column", "id_column"):
            assert getattr(source, key) == getattr(eval_set, key), (source.name, key)


def test_math500_contamination_is_reported_by_its_unique_id(tmp_path):
    path = tmp_path / "math500.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in MATH500_ROWS))
    local = {"hf_dataset": None, "path": str(path)}  # the default description, read offline
    source = _by_name(DEFAULT_BENCHMARKS, "math500").model_copy(update=local)
    refs = load_benchmark(source, StorageConfig())
    assert [r.item_id for r in refs] == ["test/precalculus/807.json", "test/algebra/903.json"]
    copied = "Let f(x) = (3x-2)/(x-2). " + MATH500_ROWS[1]["problem"]  # a synthetic copy
    hit = first_hits(build_index(refs, 13), [words(copied)])[0]
    assert hit is not None and hit.item_id == "test/algebra/903.json"
    # the evaluation reads the same rows with the same id column
    eval_set = _by_name(DEFAULT_EVAL_SETS, "math500").model_copy(update=local)
    items = load_set(eval_set, StorageConfig(), RunDir(str(tmp_path / "run")))
    assert items.num_rows == 2 and eval_set.id_column == source.id_column == "unique_id"


def test_an_empty_boxed_answer_is_unparsed_not_wrong():
    reply = "Adding the three values gives the total, so the answer is $\\boxed{ }$."
    predicted = extract_boxed(reply)
    assert predicted == ""
    pool = GradingPool(processes=1, timeout_s=30.0)
    try:
        unparsed, wrong, right = pool.grade(
            [
                (predicted, "\\frac{14}{3}", "math"),
                ("5", "\\frac{14}{3}", "math"),
                ("14/3", "\\frac{14}{3}", "math"),
            ]
        )
    finally:
        pool.close()
    assert (unparsed.status, unparsed.correct) == (GRADE_UNPARSED, False)
    assert (wrong.status, wrong.correct) == (GRADE_OK, False)
    assert (right.status, right.correct) == (GRADE_OK, True)
    assert is_equivalent("14/3", "\\frac{14}{3}", timeout_s=30.0) is True  # public API as before


def test_only_cluster_failures_of_training_say_re_run():
    import ray.exceptions
    import ray.train
    import torch

    from promptcot_ray.train.job import _infra_failure

    def failed(*causes):
        return ray.train.WorkerGroupError("x", dict(enumerate(causes)))

    assert _infra_failure(failed(ray.exceptions.ActorDiedError()))
    assert _infra_failure(failed(OSError("No space left on device")))
    assert _infra_failure(failed(torch.distributed.DistBackendError("NCCL timeout")))
    assert not _infra_failure(failed(TypeError("unsupported operand")))  # a bug in the loop
    assert not _infra_failure(failed(OSError("disk"), KeyError("labels")))  # any bug wins
    assert not _infra_failure(ray.train.ControllerError(AttributeError("x")))
    assert _infra_failure(ray.train.ControllerError(ray.exceptions.RaySystemError("gcs")))


def test_a_bug_in_a_stage_keeps_its_traceback_and_a_known_failure_resumes(monkeypatch):
    from promptcot_ray.pipeline.job import PipelineError, _run_stage
    from promptcot_ray.pipeline.stages import Stage
    from promptcot_ray.quality import job as quality_job

    stage = Stage("quality", "quality", None, "problems", "h")

    def bug(cfg):
        raise ValueError("min() arg is an empty sequence")

    monkeypatch.setattr(quality_job, "run", bug)
    with pytest.raises(ValueError, match="empty sequence"):  # not dressed up as a failure
        _run_stage(None, stage, None)

    def known(cfg):
        raise quality_job.NoAcceptedProblems("no accepted problems; run synthesize first")

    monkeypatch.setattr(quality_job, "run", known)
    with pytest.raises(PipelineError, match="resumes at quality"):
        _run_stage(None, stage, None)
