"""The MLflow sink, read back through the MLflow client from a local file store (offline).

The run directory is written with the jobs' own code (test_report's builders: synthesize's
finalize and ledger records, the quality rows, a training loss curve), then synced; what the
client reads must equal the ledger lines, the accept rate per round and the curve's rows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from promptcot_ray.config import LLMConfig, StorageConfig
from promptcot_ray.ledger import StageRecord, append_records, read_ledger
from promptcot_ray.storage import RunDir
from promptcot_ray.synthesis.config import JudgeConfig, SynthesizeConfig
from promptcot_ray.tracking import TrackingConfig
from promptcot_ray.tracking.mlflow_sink import STATE_FILE, sync
from promptcot_ray.train.loop import CURVE_FILE, curve_from_csv
from tests.unit.test_report import ROUNDS, _quality, _synthesis_round, _train_and_eval

mlflow = pytest.importorskip("mlflow", reason="the tracking extra (mlflow-skinny) is missing")


@pytest.fixture
def run(tmp_path) -> RunDir:
    run = RunDir(str(tmp_path / "run"))
    cfg = SynthesizeConfig(
        storage=StorageConfig(run_dir=run.uri),
        generator={"model": "gen"},
        judges=(JudgeConfig(name="a", llm=LLMConfig(model="judge-a")),),
    )
    for rnd in ROUNDS:
        _synthesis_round(run, rnd, cfg)
    _quality(run)
    _train_and_eval(run)
    return run


def client(cfg: TrackingConfig):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=cfg.mlflow_uri)


def history(c, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in c.get_metric_history(run_id, key))


def test_ledger_accept_rates_loss_curve_and_config_reach_mlflow(run, tmp_path):
    cfg = TrackingConfig(mlflow_uri=str(tmp_path / "mlruns"), experiment="exp")
    assert cfg.mlflow_uri == f"file://{tmp_path / 'mlruns'}"  # a plain path is a file store
    config = {"rounds": 2, "synthesize": {"set": {"judges.0.llm.model": "judge-a"}}}
    run_id = sync(cfg, run, config)
    c = client(cfg)
    logged = c.get_run(run_id)
    assert logged.info.experiment_id == c.get_experiment_by_name("exp").experiment_id
    assert logged.data.params["rounds"] == "2"
    assert logged.data.params["synthesize.set.judges.0.llm.model"] == "judge-a"
    ledger = read_ledger(run)
    totals = {x["extra"]["round"]: x for x in ledger if x["stage"] == "total"}
    assert history(c, run_id, "synthesize.accept_rate") == [
        (rnd, x["rows_out"] / x["rows_in"]) for rnd, x in sorted(totals.items())
    ]
    quality = next(x for x in ledger if x["job"] == "quality")
    assert history(c, run_id, "quality.quality.rows_out") == [(0, quality["rows_out"])]
    for reason, count in quality["rejected"].items():
        assert history(c, run_id, f"quality.quality.rejected.{reason}") == [(0, count)]
    curve = curve_from_csv(run.read_text(f"models/generator/{CURVE_FILE}"))
    assert history(c, run_id, "train.generator.loss") == [(r["step"], r["loss"]) for r in curve]
    assert len(curve) == 20


def test_a_second_sync_logs_only_what_changed(run, tmp_path):
    cfg = TrackingConfig(mlflow_uri=str(tmp_path / "mlruns"))
    first = sync(cfg, run)
    assert sync(cfg, run) == first  # same MLflow run, nothing logged twice
    c = client(cfg)
    assert len(c.get_metric_history(first, "train.generator.loss")) == 20
    # a re-run of a stage replaces its ledger line: the new totals are logged once more
    append_records(
        run,
        [
            StageRecord(
                job="quality",
                stage="quality",
                rows_in=5,
                rows_out=2,
                rejected={"near_duplicate": 3},
            )
        ],
    )
    sync(cfg, run)
    assert [m.value for m in c.get_metric_history(first, "quality.quality.rows_out")][-1] == 2
    assert len(c.get_metric_history(first, "quality.quality.rows_out")) == 2
    assert json.loads(Path(run.path(STATE_FILE)).read_text())["run_id"] == first
    # a lost state file: the run is found again by its run-directory tag, not duplicated
    Path(run.path(STATE_FILE)).unlink()
    assert sync(cfg, run) == first


def test_tracking_is_off_without_a_uri(run):
    assert sync(TrackingConfig(), run) is None
    assert not run.exists(STATE_FILE)


def test_pipeline_config_takes_a_tracking_section_and_the_cli_syncs_a_run(run, tmp_path):
    from typer.testing import CliRunner

    from promptcot_ray.cli import app
    from promptcot_ray.config import ConfigError, load_config
    from promptcot_ray.pipeline.config import PipelineConfig

    config = Path(__file__).resolve().parents[2] / "jobs/configs/pipeline-local.yaml"
    uri = tmp_path / "mlruns"
    cfg = load_config(PipelineConfig, config, [f"tracking.mlflow_uri={uri}"])
    assert cfg.tracking.mlflow_uri == f"file://{uri}"
    with pytest.raises(ConfigError, match="mlflow_ur"):
        load_config(PipelineConfig, config, [f"tracking.mlflow_ur={uri}"])
    run_id = sync(cfg.tracking, run, cfg)
    assert client(cfg.tracking).get_run(run_id).data.params["rounds"] == str(cfg.rounds)
    result = CliRunner().invoke(app, ["track", run.uri, "--mlflow-uri", str(uri)])
    assert result.exit_code == 0 and run_id in result.output, result.output
    result = CliRunner().invoke(app, ["track", str(tmp_path / "none"), "--mlflow-uri", str(uri)])
    assert result.exit_code == 2 and "no run directory" in result.output
