"""The one error-fraction check every engine stage applies to its finished rows.

A job stops (and says how to resume) when more of its engine calls failed than its
`max_error_fraction` allows; the rows count each id once (`resume.finished_rows`), so stale
error copies left by retries do not count (issue #13 found three formulas, one of them
counting those copies). It sits below the stages so none imports another for it.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from promptcot_ray import records as R


class TooManyErrors(RuntimeError):
    """More engine calls failed than max_error_fraction allows."""


def check_error_fraction(rows: pa.Table, limit: float, what: str) -> None:
    """Fail the job when the share of `status == error` rows exceeds `limit`."""
    errors = pc.sum(pc.equal(rows[R.STATUS], R.STATUS_ERROR)).as_py() or 0
    if rows.num_rows and errors / rows.num_rows > limit:
        raise TooManyErrors(
            f"{errors} of {rows.num_rows} {what} calls failed (max_error_fraction={limit}); "
            "see the error column. Failed rows are retried when the job is run again."
        )
