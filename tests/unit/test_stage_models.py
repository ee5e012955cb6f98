"""`promptcot-ray stage-models` against moto's S3 server over HTTP: a tiny model copied into
the bucket byte for byte, a config that names it there, a re-run that copies nothing, the
train job's loader reading it back, and clear errors for a wrong bucket or an offline hub."""

from __future__ import annotations

import os
from pathlib import Path

import yaml
from typer.testing import CliRunner

from promptcot_ray.cli import app
from promptcot_ray.config import load_config
from promptcot_ray.staging.models import STAGED_MARKER
from promptcot_ray.synthesis.config import SynthesizeConfig
from promptcot_ray.train.config import TrainConfig

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def _objects(client, bucket: str, prefix: str) -> dict[str, dict]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return {o["Key"]: o for page in pages for o in page.get("Contents", [])}


def _stage(job: str, config: str, out: Path, *sets: str, to: str) -> object:
    args = ["stage-models", job, "-c", str(REPO / "jobs/configs" / config), "-o", str(out)]
    args += [x for s in sets for x in ("-s", s)] + ["--to", to]
    return runner.invoke(app, args)


def test_a_model_is_staged_once_and_the_config_loads_it_from_the_bucket(
    s3_env, tiny_model_path, tmp_path
):
    client, bucket = s3_env["client"], s3_env["bucket"]
    models = [f"{k}={tiny_model_path}" for k in ("generator.model", "judges.0.llm.model")]
    models.append(f"judges.1.llm.model={tiny_model_path}")
    out = tmp_path / "staged.yaml"
    result = _stage("synthesize", "local.yaml", out, *models, to=f"s3://{bucket}/models")
    assert result.exit_code == 0, result.output
    assert "generator.model, judges.0.llm.model, judges.1.llm.model" in result.output
    assert "copied" in result.output

    objects = _objects(client, bucket, "models/")
    marker = next(k for k in objects if k.endswith(STAGED_MARKER))
    prefix = marker[: -len(STAGED_MARKER)]
    assert prefix.startswith("models/test-tiny-llama-")
    local = {p.relative_to(tiny_model_path).as_posix(): p for p in tiny_model_path.rglob("*")}
    local = {k: p for k, p in local.items() if p.is_file()}
    staged = {k[len(prefix) :]: k for k in objects if k != marker}
    assert sorted(staged) == sorted(local)
    for rel, key in staged.items():  # byte for byte
        body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
        assert body == local[rel].read_bytes(), rel

    cfg = load_config(SynthesizeConfig, out)
    uri = f"s3://{bucket}/{prefix.rstrip('/')}"
    assert {cfg.generator.model, *(j.llm.model for j in cfg.judges)} == {uri}
    assert (
        cfg.combinations
        == load_config(SynthesizeConfig, REPO / "jobs/configs/local.yaml").combinations
    )

    again = _stage("synthesize", "local.yaml", out, *models, to=f"s3://{bucket}/models")
    assert again.exit_code == 0 and "already staged" in again.output, again.output
    assert _objects(client, bucket, "models/") == objects  # nothing written again


def test_a_staged_base_model_is_what_the_train_job_loads(s3_env, tiny_model_path, tmp_path):
    from promptcot_ray.model_paths import local_model_dir

    bucket, out = s3_env["bucket"], tmp_path / "train.yaml"
    result = _stage(
        "train", "train-local.yaml", out, f"base_model={tiny_model_path}", to=f"s3://{bucket}/m"
    )
    assert result.exit_code == 0, result.output
    cfg = load_config(TrainConfig, out)
    assert cfg.base_model.startswith(f"s3://{bucket}/m/test-tiny-llama-")
    folder = Path(local_model_dir(cfg.base_model, cfg.storage))
    weights = "model.safetensors"
    assert (folder / weights).read_bytes() == (tiny_model_path / weights).read_bytes()
    assert yaml.safe_load(out.read_text().split("\n", 1)[1])["base_model"] == cfg.base_model


def test_a_missing_bucket_is_refused_before_any_copy(s3_env, tiny_model_path, tmp_path):
    result = _stage(
        "train",
        "train-local.yaml",
        tmp_path / "x.yaml",
        f"base_model={tiny_model_path}",
        to="s3://no-such-bucket-for-models/m",
    )
    assert result.exit_code == 2 and "no-such-bucket-for-models" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "x.yaml").exists()


def test_a_hub_name_that_cannot_be_fetched_is_a_clear_error(s3_env, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    result = _stage(
        "train",
        "train-local.yaml",
        tmp_path / "x.yaml",
        "base_model=some-org/not-here-7b",
        to=f"s3://{s3_env['bucket']}/m",
    )
    assert result.exit_code == 2, result.output
    assert "some-org/not-here-7b" in result.output and "hub did not give it" in result.output


def test_an_unknown_job_is_refused(tmp_path):
    result = runner.invoke(
        app, ["stage-models", "nope", "-c", str(REPO / "jobs/configs/local.yaml"), "-o", "x.yaml"]
    )
    assert result.exit_code == 2 and "choose from" in result.output


# Every model the embedded pipeline's stages load (outside the pipeline's run: hand-offs)
PIPELINE_MODELS = {
    "concepts": ["extractor.model"],
    "rationales": ["writer.model"],
    "train_generator": ["base_model"],
    "synthesize": ["judges.0.llm.model", "judges.1.llm.model"],
    "distill": ["teacher.model"],
    "train_student": ["base_model"],
}


def test_a_pipelines_models_are_staged_once_as_set_overrides_of_its_stages(
    s3_env, tiny_model_path, tmp_path
):
    from promptcot_ray.pipeline.config import PipelineConfig
    from promptcot_ray.pipeline.stages import build_stages
    from promptcot_ray.staging.models import model_fields

    data = yaml.safe_load((REPO / "jobs/configs/pipeline-local.yaml").read_text())
    for spec, keys in PIPELINE_MODELS.items():
        data[spec]["config"] = str(REPO / data[spec]["config"])
        data[spec]["set"] = {
            **data[spec].get("set", {}),
            **dict.fromkeys(keys, str(tiny_model_path)),
        }
    data["evaluate"]["config"] = str(REPO / data["evaluate"]["config"])
    data["quality"]["config"] = str(REPO / data["quality"]["config"])
    source = tmp_path / "pipeline.yaml"
    source.write_text(yaml.safe_dump(data))
    out, bucket = tmp_path / "staged.yaml", s3_env["bucket"]
    args = ["stage-models", "pipeline", "-c", str(source), "-o", str(out)]
    result = runner.invoke(app, [*args, "--to", f"s3://{bucket}/models"])
    assert result.exit_code == 0, result.output
    assert result.output.count("copied") == 1, result.output  # one model, copied once
    markers = [k for k in _objects(s3_env["client"], bucket, "models/") if STAGED_MARKER in k]
    assert len(markers) == 1
    uri = f"s3://{bucket}/{markers[0][: -len(STAGED_MARKER) - 1]}"

    staged = load_config(PipelineConfig, out)
    for spec, keys in PIPELINE_MODELS.items():
        assert {k: getattr(staged, spec).set[k] for k in keys} == dict.fromkeys(keys, uri), spec
    for stage in build_stages(staged):  # what each stage loads: staged, or a run: hand-off
        for key, model in model_fields(stage.config) if stage.config is not None else ():
            assert model == uri or model.startswith("run:"), (stage.name, key, model)
    assert staged.rounds == 2 and staged.synthesize.config == data["synthesize"]["config"]


def test_an_s3_model_downloads_from_the_endpoint_in_the_yaml_not_the_environment(
    s3_env, tiny_model_path, tmp_path, monkeypatch
):
    """ray.data.llm downloads s3:// models with boto3, which reads only the environment:
    the endpoint named in `storage.s3_endpoint_url` reaches the download on the driver and
    in the engine actors' runtime_env."""
    from ray.llm._internal.common.utils.download_utils import (
        NodeModelDownloadable,
        download_model_files,
    )

    from promptcot_ray.config import LLMConfig, StorageConfig
    from promptcot_ray.llm.engine import driver_env, engine_env
    from promptcot_ray.model_paths import with_run_models
    from promptcot_ray.staging.models import stage_model
    from promptcot_ray.storage import RunDir

    storage = StorageConfig(run_dir=str(tmp_path / "run"), s3_endpoint_url=s3_env["endpoint"])
    staged = stage_model(
        str(tiny_model_path), ("model",), RunDir(f"s3://{s3_env['bucket']}/m", storage)
    )
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):  # only the YAML knows it now
        monkeypatch.delenv(name, raising=False)

    cfg = with_run_models(LLMConfig(model=staged.uri), RunDir(storage.run_dir, storage))
    assert engine_env(cfg)["AWS_ENDPOINT_URL_S3"] == s3_env["endpoint"]
    with driver_env(cfg.download_env):
        local = download_model_files(
            model_id=cfg.source, download_model=NodeModelDownloadable.TOKENIZER_ONLY
        )
    assert (Path(local) / "config.json").read_bytes() == (
        tiny_model_path / "config.json"
    ).read_bytes()
    assert "AWS_ENDPOINT_URL_S3" not in os.environ  # the driver's environment as it was

    local_model = with_run_models(
        LLMConfig(model=str(tiny_model_path)), RunDir(storage.run_dir, storage)
    )
    assert local_model.download_env == {} and "AWS_ENDPOINT_URL_S3" not in engine_env(local_model)
