"""Optional experiment tracking (MLflow) fed from what a run directory records."""

from promptcot_ray.tracking.config import TrackingConfig

__all__ = ["TrackingConfig"]
