"""Exports of a run's final problems for trainers and the Hugging Face Hub."""

from promptcot_ray.export.inputs import ExportError
from promptcot_ray.export.job import FORMATS, ExportSummary, export_run

__all__ = ["FORMATS", "ExportError", "ExportSummary", "export_run"]
