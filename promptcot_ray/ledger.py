"""The run ledger: one JSON line per job stage with rows in/out, rejections, tokens, seconds.

It is the cost and yield record of a run: reports and the `plan` command read it, and the
synthesize job checks that it reconciles (inputs = outputs + rejections by reason).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from promptcot_ray.records import now_iso
from promptcot_ray.storage import RunDir

LEDGER_FILE = "ledger.jsonl"


@dataclass(kw_only=True)
class StageRecord:
    """What one stage of one job did (keyword arguments only: eleven fields read badly by
    position, and a swapped rows_in/rows_out would still type-check)."""

    job: str
    stage: str
    rows_in: int
    rows_out: int
    rejected: dict[str, int] = field(default_factory=dict)
    tokens_in: int = 0
    tokens_out: int = 0
    seconds: float = 0.0
    model: str | None = None
    prompt_version: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def reconciles(self) -> bool:
        return self.rows_in == self.rows_out + sum(self.rejected.values())


def _key(line: dict[str, Any]) -> tuple:
    return line["job"], line["stage"], (line.get("extra") or {}).get("round")


def append_records(run: RunDir, records: list[StageRecord]) -> None:
    """Record stages in one write; a re-run replaces its earlier lines for the same stages.

    The ledger is read-modify-written (S3 objects cannot be appended to), so each
    (job, stage, round) keeps exactly one line: the latest run's totals, never a double count.
    """
    new = [{"time": now_iso(), **asdict(rec)} for rec in records]
    replaced = {_key(line) for line in new}
    kept = [line for line in run.iter_jsonl(LEDGER_FILE) if _key(line) not in replaced]
    text = "".join(json.dumps(x, sort_keys=True, default=str) + "\n" for x in kept + new)
    run.write_text(LEDGER_FILE, text)


def read_ledger(run: RunDir) -> list[dict[str, Any]]:
    return list(run.iter_jsonl(LEDGER_FILE))
