"""The `tracking:` config section: where a run's ledger, accept rates and loss curves go."""

from __future__ import annotations

from pydantic import Field, field_validator

from promptcot_ray.config import _Frozen


class TrackingConfig(_Frozen):
    """An optional MLflow sink; off unless `mlflow_uri` is set."""

    mlflow_uri: str | None = Field(
        None,
        description="MLflow tracking URI: http(s)://HOST:5000 for a server, sqlite:///mlflow.db, "
        "or a local folder (file:///abs/path or a plain path; works offline). None: no tracking.",
    )
    experiment: str = Field(
        "promptcot-ray", description="MLflow experiment the run is logged under (made if absent)."
    )
    run_name: str | None = Field(
        None, description="MLflow run name; default: the run directory's last path part."
    )

    @field_validator("mlflow_uri")
    @classmethod
    def _local_paths_as_uris(cls, value: str | None) -> str | None:
        """A plain local path becomes an absolute file:// URI (MLflow reads it as a file store)."""
        import importlib.util
        import os

        if value is None:
            return value
        if importlib.util.find_spec("mlflow") is None:  # fail before any stage starts
            raise ValueError(
                f"mlflow_uri={value!r} needs mlflow: pip install 'promptcot-ray[tracking]'"
            )
        if "://" in value or value.startswith("sqlite:"):
            return value
        return "file://" + os.path.abspath(value)
