"""Run planning: tokens, wall time and GPU-hours per stage, before any GPU is booked.

`make_plan` reads the job configs of a run, sizes every stage for a target number of
accepted problems and prices it with per-replica throughput figures (defaults in
`figures.py`, overridable by measured ones). Nothing here imports Ray, vLLM or torch.
"""

from __future__ import annotations

from promptcot_ray.plan.configs import PlanError
from promptcot_ray.plan.planner import make_plan

__all__ = ["PlanError", "make_plan"]
