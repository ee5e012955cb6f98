"""The job registry: every job's name, config type, runner, summary and `--help`, once.

The CLI makes one command per entry, the pipeline runs its stages through the same entries,
and `show-config`, `submit` and `plan` look configs up here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from pydantic import BaseModel

from promptcot_ray.concepts.config import ConceptsConfig
from promptcot_ray.distill.config import DistillConfig
from promptcot_ray.evaluate.config import EvaluateConfig
from promptcot_ray.pipeline.config import PipelineConfig
from promptcot_ray.quality.config import QualityConfig
from promptcot_ray.rationales.config import RationalesConfig
from promptcot_ray.synthesis.config import SynthesizeConfig
from promptcot_ray.train.config import TrainConfig


@dataclass(frozen=True)
class JobSpec:
    """One job: `module.run(cfg)` does the work and `module.EXPECTED_ERRORS` are its failures
    with a clear message (anything else is a bug and keeps its traceback)."""

    name: str
    config: type[BaseModel]
    module: str
    printer: str  # promptcot_ray.summary.<printer>(result)
    help: str

    def load(self) -> ModuleType:
        return importlib.import_module(self.module)

    def print_summary(self, result: Any) -> None:
        import promptcot_ray.summary as summaries

        getattr(summaries, self.printer)(result)


JOBS: dict[str, JobSpec] = {
    spec.name: spec
    for spec in (
        JobSpec(
            "synthesize",
            SynthesizeConfig,
            "promptcot_ray.synthesis.job",
            "print_synthesis_summary",
            """Sample concept combinations, generate problems, judge them, keep the perfect ones.

    Writes drafts, judgements, accepted and rejected rows (each with a reason) under
    <run_dir>/synthesis/round-<k>/ and one ledger line per stage. Re-running the same
    command resumes: finished combinations are not generated again.
    """,
        ),
        JobSpec(
            "concepts",
            ConceptsConfig,
            "promptcot_ray.concepts.job",
            "print_concepts_summary",
            """Extract k foundational concepts per seed problem and build the concept pool.

    Reads seeds (JSONL, Parquet or a Hugging Face dataset), writes concepts/seeds,
    concepts/extracted (one row per seed, with a reason when rejected) and
    concepts/pool (embeddings, frequencies, co-occurrence), which synthesize samples from.
    """,
        ),
        JobSpec(
            "rationales",
            RationalesConfig,
            "promptcot_ray.rationales.job",
            "print_rationales_summary",
            """Write each seed's design rationale and the generator's SFT rows.

    Needs the concepts job's output. Writes rationales/data (prompt = the generator
    prompt, completion = tagged rationale + problem) and rationales/rejects.
    """,
        ),
        JobSpec(
            "quality",
            QualityConfig,
            "promptcot_ray.quality.job",
            "print_quality_summary",
            """Remove exact and near-duplicate problems and benchmark or seed copies.

    Reads every round's synthesis/round-<k>/accepted and writes problems/ (kept) and
    problems-removed/ (one row per removed problem: reason, matched id or source, the
    estimated Jaccard or the shared n-gram), plus one ledger line.
    """,
        ),
        JobSpec(
            "train",
            TrainConfig,
            "promptcot_ray.train.job",
            "print_train_summary",
            """Fine-tune a model on prompt/completion rows with DeepSpeed ZeRO on Ray Train.

    Trains the generator (data.source: rationales/data) or a student (distill/sft).
    Checkpoints go to <run_dir>/models/<name>/checkpoints, the loss curve to
    models/<name>/loss_curve.csv and the Hugging Face export to models/<name>/final, which
    other jobs name as `run:models/<name>/final`. Re-running after a kill resumes from the
    latest checkpoint.
    """,
        ),
        JobSpec(
            "distill",
            DistillConfig,
            "promptcot_ray.distill.job",
            "print_distill_summary",
            """Solve each problem n times with a teacher; majority-vote pseudo-labels; student SFT rows.

    Reads problems/ (quality job) or every round's accepted rows. Writes distill/solutions
    (each sample, or its rejection reason), distill/labels (label + confidence per problem)
    and distill/sft (prompt/completion rows for `train`). Re-running resumes.
    """,  # noqa: E501 (the command's one-line summary)
        ),
        JobSpec(
            "evaluate",
            EvaluateConfig,
            "promptcot_ray.evaluate.job",
            "print_evaluate_summary",
            """Evaluate a model: n seeded runs per benchmark item, answers graded with math-verify.

    Prints accuracy mean +- sample std over runs, mean reasoning tokens and timeouts per
    benchmark; writes eval/<name>/samples and summary.json. With difficulty: true it also
    prints the method's difficulty measures for every set (synthetic sets included).
    """,
        ),
    )
}

# Every config type by job name, the pipeline's included (show-config, submit, plan).
JOB_CONFIGS: dict[str, type[BaseModel]] = {
    **{name: spec.config for name, spec in JOBS.items()},
    "pipeline": PipelineConfig,
}
