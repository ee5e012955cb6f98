"""Sync a run directory into MLflow: the config as parameters, every ledger line as metrics,
the accept rate per synthesis round, and every training loss curve.

Everything comes from what the run directory already records (ledger.jsonl,
models/<name>/loss_curve.csv), so the sink needs no hook inside a job and can run again at
any time: `tracking/mlflow.json` in the run directory remembers the MLflow run and every
(metric, step, value) already logged, so a re-sync logs only what is new or changed.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from datetime import datetime
from typing import Any

from pydantic import BaseModel

from promptcot_ray.ledger import read_ledger
from promptcot_ray.storage import RunDir
from promptcot_ray.tracking.config import TrackingConfig

STATE_FILE = "tracking/mlflow.json"
RUN_DIR_TAG = "promptcot.run_dir"
LEDGER_FIELDS = ("rows_in", "rows_out", "tokens_in", "tokens_out", "seconds")
CURVE_FIELDS = ("loss", "lr", "tokens_per_s", "step_seconds")
BATCH = 900  # MLflow takes at most 1000 metrics and 100 params per log_batch call
PARAM_BATCH = 90
MAX_PARAM_CHARS = 6000


def metric_key(*parts: Any) -> str:
    """A metric name MLflow accepts: alphanumerics, _ - . / : and spaces."""
    return ".".join(re.sub(r"[^A-Za-z0-9_\-./: ]", "_", str(p)) for p in parts if p != "")


def _millis(iso: str | None) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1000) if iso else 0


def ledger_metrics(lines: list[dict[str, Any]]) -> list[tuple[str, float, int, int]]:
    """(key, value, step, timestamp ms) per ledger number; the step is the synthesis round."""
    out = []
    for line in lines:
        step = int((line.get("extra") or {}).get("round") or 0)
        base, when = (line["job"], line["stage"]), _millis(line.get("time"))
        for name in LEDGER_FIELDS:
            out.append((metric_key(*base, name), float(line.get(name) or 0), step, when))
        for reason, count in sorted((line.get("rejected") or {}).items()):
            out.append((metric_key(*base, "rejected", reason), float(count), step, when))
        if line["job"] == "synthesize" and line["stage"] == "total" and line["rows_in"]:
            rate = line["rows_out"] / line["rows_in"]
            out.append(("synthesize.accept_rate", rate, step, when))
    return out


def curve_metrics(run: RunDir) -> list[tuple[str, float, int, int]]:
    """Every models/<name>/loss_curve.csv as train.<name>.<field> over optimizer steps."""
    from promptcot_ray.train.loop import CURVE_FILE, curve_from_csv

    out = []
    for rel in run.list_files("models", CURVE_FILE):
        name = posixpath.basename(posixpath.dirname(rel))
        for row in curve_from_csv(run.read_text(rel)):
            for field in CURVE_FIELDS:
                if row.get(field) is not None:
                    out.append(
                        (metric_key("train", name, field), float(row[field]), int(row["step"]), 0)
                    )
    return out


def flat_params(config: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config -> dotted keys; lists by index (judges.0.llm.model)."""
    out: dict[str, str] = {}
    items = config.items() if isinstance(config, dict) else enumerate(config)
    for key, value in items:
        name = f"{prefix}{key}"
        if isinstance(value, dict | list) and value:
            out.update(flat_params(value, f"{name}."))
        else:
            out[name] = json.dumps(value) if not isinstance(value, str) else value
    return {k: v[:MAX_PARAM_CHARS] for k, v in out.items()}


def _client(uri: str) -> Any:
    from mlflow.tracking import MlflowClient  # TrackingConfig checked it is installed

    if uri.startswith("file:"):
        # MLflow 3 refuses its file store unless asked for it; a local folder is the offline
        # choice this project documents, so opt in for that URI only.
        os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    return MlflowClient(tracking_uri=uri)


def _run_id(client: Any, cfg: TrackingConfig, run: RunDir, state: dict[str, Any]) -> str:
    """The MLflow run of this run directory: remembered, found by tag, or created."""
    if state.get("tracking_uri") == cfg.mlflow_uri and state.get("run_id"):
        return state["run_id"]
    experiment = client.get_experiment_by_name(cfg.experiment)
    exp_id = experiment.experiment_id if experiment else client.create_experiment(cfg.experiment)
    found = client.search_runs([exp_id], filter_string=f"tags.`{RUN_DIR_TAG}` = '{run.uri}'")
    if found:
        return found[0].info.run_id
    name = cfg.run_name or posixpath.basename(run.uri.rstrip("/"))
    return client.create_run(exp_id, tags={RUN_DIR_TAG: run.uri}, run_name=name).info.run_id


def sync(cfg: TrackingConfig, run: RunDir, config: BaseModel | dict | None = None) -> str | None:
    """Log what is new in `run` to MLflow; returns the MLflow run id (None: tracking off).

    `config` (the resolved pipeline or job config) becomes the run's parameters.
    """
    if cfg.mlflow_uri is None:
        return None
    if isinstance(config, BaseModel):
        config = json.loads(config.model_dump_json())
    from mlflow.entities import Metric, Param

    client = _client(cfg.mlflow_uri)
    state = run.read_json(STATE_FILE) if run.exists(STATE_FILE) else {}
    run_id = _run_id(client, cfg, run, state)
    logged: dict[str, dict[str, float]] = (
        state.get("metrics", {}) if state.get("run_id") == run_id else {}
    )
    metrics = []
    for key, value, step, when in [*ledger_metrics(read_ledger(run)), *curve_metrics(run)]:
        if logged.get(key, {}).get(str(step)) != value:
            metrics.append(Metric(key, value, when, step))
            logged.setdefault(key, {})[str(step)] = value
    for i in range(0, len(metrics), BATCH):
        client.log_batch(run_id, metrics=metrics[i : i + BATCH])
    known = client.get_run(run_id).data.params  # params are write-once in MLflow
    params = [Param(k, v) for k, v in flat_params(config or {}).items() if k not in known]
    for i in range(0, len(params), PARAM_BATCH):
        client.log_batch(run_id, params=params[i : i + PARAM_BATCH])
    run.write_json(
        STATE_FILE, {"tracking_uri": cfg.mlflow_uri, "run_id": run_id, "metrics": logged}
    )
    return run_id
