"""The run report: a self-contained HTML page with PNG plots under <run>/report/."""

from promptcot_ray.report.job import build_report

__all__ = ["build_report"]
