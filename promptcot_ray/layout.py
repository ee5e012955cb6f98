"""The run directory's catalog: every folder and file a job writes or reads, named once.

A run directory (local path or s3://) holds one folder per stage. Jobs, the pipeline, the
report, exports and `plan` find each other's outputs here, not by spelling paths or parsing
them (tests/unit/test_layout.py fails on a run-directory path spelled anywhere else).

    concepts/{seeds,extracted,pool}/     the concept pool and what it was made from
    rationales/{results,data,rejects}/   rationale rows (the generator's training data)
    synthesis/round-<k>/{combinations,results,drafts,judgements,accepted,rejected}/
    pipeline/generator-data/round-<k>/   round k's generator training rows (k >= 1)
    problems/, problems-removed/         after the quality gates (quality/ holds its config)
    distill/{solutions,labels,sft}/      teacher solutions, pseudo-labels, students' SFT rows
    models/<name>/{final,checkpoints}/   trained models; loss_curve.csv
    eval/<name>/summary.json             evaluation of one model
    report/index.html                    the run's report
    logs/                                engine and framework logs
"""

from __future__ import annotations

import re

CONFIG_FILE = "config.yaml"  # each job's resolved config, in its stage folder

CONCEPTS = "concepts"
SEEDS = "concepts/seeds"
EXTRACTED = "concepts/extracted"
POOL = "concepts/pool"

RATIONALES = "rationales"
RATIONALE_RESULTS = "rationales/results"
RATIONALE_DATA = "rationales/data"
RATIONALE_REJECTS = "rationales/rejects"

SYNTHESIS = "synthesis"
ROUND_NAME = re.compile(r"^round-(\d+)$")
ROUND_OUTPUTS = ("drafts", "judgements", "accepted", "rejected")  # what finalize writes
ROUND_PARTS = ("combinations", "results", *ROUND_OUTPUTS)
ACCEPTED_GLOB = "synthesis/round-*/accepted"  # for humans and messages, not for listing

PIPELINE = "pipeline"
GENERATOR_DATA = "pipeline/generator-data"
QUALITY = "quality"
PROBLEMS = "problems"
PROBLEMS_REMOVED = "problems-removed"

DISTILL = "distill"
SOLUTIONS = "distill/solutions"
LABELS = "distill/labels"
DISTILL_SFT = "distill/sft"

MODELS = "models"
FINAL_MODEL = "final"
CHECKPOINTS = "checkpoints"
CURVE_FILE = "loss_curve.csv"

EVAL = "eval"
EVAL_SUMMARY = "summary.json"
REPORT = "report"
REPORT_INDEX = "report/index.html"
LOGS = "logs"


def config_file(stage_dir: str) -> str:
    """Where a job keeps its resolved config: <stage>/config.yaml."""
    return f"{stage_dir}/{CONFIG_FILE}"


def round_dir(k: int) -> str:
    """synthesis/round-<k>: one synthesis round (its marker, stats and tables)."""
    return f"{SYNTHESIS}/round-{k}"


def round_part(k: int, part: str) -> str:
    """One of a round's tables (ROUND_PARTS) or files (stats.json)."""
    return f"{round_dir(k)}/{part}"


def round_index(name: str) -> int | None:
    """k for a folder named round-<k>, else None."""
    found = ROUND_NAME.fullmatch(name)
    return int(found.group(1)) if found else None


def generator_data(k: int) -> str:
    """pipeline/generator-data/round-<k>: the rows round k's generator is trained on."""
    return f"{GENERATOR_DATA}/round-{k}"


def model_dir(name: str) -> str:
    return f"{MODELS}/{name}"


def model_file(name: str, file: str) -> str:
    """A file or folder of one model: final, checkpoints, loss_curve.csv, config.yaml, ..."""
    return f"{model_dir(name)}/{file}"


def eval_dir(name: str) -> str:
    return f"{EVAL}/{name}"


def eval_part(name: str, part: str) -> str:
    """A table of one evaluation: generations (resumable), samples (graded)."""
    return f"{eval_dir(name)}/{part}"


def eval_summary(name: str) -> str:
    return f"{eval_dir(name)}/{EVAL_SUMMARY}"
