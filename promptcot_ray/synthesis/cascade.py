"""The judge cascade: which later judge calls can be skipped because the outcome is known.

Under only_perfect one judge's "acceptable" drops the draft whatever the others say; under lax
one "bad" does. A later judge then cannot change the decision, so its call is skipped, except
for an audited sample of drafts (by a hash of the draft id, so a re-run picks the same ones)
that every judge judges: the judges' agreement is measured on that sample, not on the drafts
the first judge liked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from promptcot_ray import records as R
from promptcot_ray.synthesis.stages import judge_column

Mode = Literal["only_perfect", "lax"]
HASH_SPAN = 1 << 32  # the audit draw reads 8 hex digits of the id hash


def audited(draft_id: str, fraction: float) -> bool:
    """Whether every judge judges this draft: the same answer for an id in every run."""
    return int(R.make_id("audit", draft_id)[:8], 16) < fraction * HASH_SPAN


def rejected_before(row: dict[str, Any], index: int, mode: Mode) -> bool:
    """Whether the judges before `index` already rejected the draft, whatever later ones say.

    A judge with no verdict (failed, unparseable) rejects in both modes, as in `decide`; a
    judge that was itself skipped (no status) says nothing, an earlier one decided.
    """
    for i in range(index):
        if row.get(judge_column(i, "status")) is None:
            continue
        verdict = row.get(judge_column(i, "verdict"))
        if verdict is None:
            return True
        if verdict == "bad" or (mode == "only_perfect" and verdict != "perfect"):
            return True
    return False


@dataclass(frozen=True)
class Cascade:
    """Picklable rule the judge stages share: skip judge `index` for a row or not."""

    mode: Mode
    audit_fraction: float

    def skips(self, row: dict[str, Any], index: int) -> bool:
        if index == 0 or row.get("draft_status") != R.STATUS_OK:
            return False
        return rejected_before(row, index, self.mode) and not audited(
            row["draft_id"], self.audit_fraction
        )
