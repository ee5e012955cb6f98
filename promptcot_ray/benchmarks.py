"""The default benchmarks, each described once.

Decontamination (the quality gates' `BenchmarkSource`) and evaluation (`EvalSet`) both read
this table, so they agree on where each set lives and which column names an item: a
contaminated problem is reported with the same item id the evaluation rows carry (MATH-500's
is `unique_id`, e.g. `test/precalculus/807.json`; GSM8K has none, so its row number is used).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

# Fields only the evaluation needs (decontamination reads problems, not answers).
_EVAL_ONLY = ("answer_column", "compare")


@dataclass(frozen=True)
class Benchmark:
    """Where one benchmark lives on Hugging Face and what its columns are called."""

    name: str  # short name used in reasons, rows and tables
    hf_dataset: str
    hf_split: str
    hf_config: str | None = None
    problem_column: str = "problem"
    answer_column: str = "answer"
    id_column: str | None = "id"  # None: the set has no id column; the row number is used
    compare: str = "math"  # evaluation: math-verify ("math") or numbers ("numeric")

    def source_fields(self) -> dict[str, Any]:
        """Keyword arguments of the quality gates' BenchmarkSource."""
        return {k: v for k, v in asdict(self).items() if k not in _EVAL_ONLY}

    def eval_fields(self) -> dict[str, Any]:
        """Keyword arguments of the evaluate job's EvalSet."""
        return asdict(self)


DEFAULTS = (
    Benchmark("math500", "HuggingFaceH4/MATH-500", "test", id_column="unique_id"),
    Benchmark("aime2024", "HuggingFaceH4/aime_2024", "train"),
    Benchmark("aime2025", "yentinglin/aime_2025", "train"),
    Benchmark(
        "gsm8k",
        "openai/gsm8k",
        "test",
        hf_config="main",
        problem_column="question",
        id_column=None,
        compare="numeric",
    ),
)
