"""Config loading: YAML + dotted overrides, errors that name the key, the shipped configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from promptcot_ray.config import (
    ConfigError,
    StorageConfig,
    apply_overrides,
    config_hash,
    config_to_yaml,
    load_config,
)
from promptcot_ray.synthesis.config import SynthesizeConfig

REPO = Path(__file__).resolve().parents[2]
LOCAL = REPO / "jobs" / "configs" / "local.yaml"


def test_shipped_local_config_loads():
    cfg = load_config(SynthesizeConfig, LOCAL)
    assert cfg.generator.device == "cpu"
    assert [j.name for j in cfg.judges] == ["judge_a", "judge_b"]
    assert cfg.judges[1].llm.seed == 1 and cfg.judges[1].llm.model == cfg.judges[0].llm.model


@pytest.mark.parametrize(
    ("override", "expected_in_message"),
    [
        ("generator.temprature=0.5", "generator.temprature"),  # misspelled key
        ("combinations.num_combinations=many", "combinations.num_combinations"),
        ("combinations.levels=[IMO]", "levels"),
        ("acceptance=strict", "acceptance"),
        ("storage.bucket=x", "storage.bucket"),
        ("generator.top_p=2", "generator.top_p"),
    ],
)
def test_bad_values_fail_naming_the_key(override, expected_in_message):
    with pytest.raises(ConfigError) as err:
        load_config(SynthesizeConfig, LOCAL, [override])
    assert expected_in_message in str(err.value)


def test_overrides_reach_nested_and_list_items():
    cfg = load_config(
        SynthesizeConfig,
        LOCAL,
        ["judges.1.llm.model=/m/judge", "combinations.num_combinations=400000", "round=2"],
    )
    assert cfg.judges[1].llm.model == "/m/judge"
    assert cfg.judges[0].llm.model == ".cache/tiny-llama"
    assert cfg.combinations.num_combinations == 400000 and cfg.round == 2


def test_override_syntax_errors():
    with pytest.raises(ConfigError, match=r"dotted\.key=value"):
        apply_overrides({}, ["no-equals-sign"])
    with pytest.raises(ConfigError, match="not a section"):
        apply_overrides({"round": 1}, ["round.x=2"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(SynthesizeConfig, tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("generator: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(SynthesizeConfig, bad)


def test_cross_field_rules():
    with pytest.raises(ConfigError, match="unique"):
        load_config(SynthesizeConfig, LOCAL, ["judges.1.name=judge_a"])
    with pytest.raises(ConfigError, match="tensor_parallel_size"):
        load_config(SynthesizeConfig, LOCAL, ["generator.tensor_parallel_size=4"])
    with pytest.raises(ConfigError, match="base_url"):
        load_config(SynthesizeConfig, LOCAL, ["judges.0.llm.engine=openai"])


def test_frozen_yaml_round_trips_and_hash_is_stable(tmp_path):
    cfg = load_config(SynthesizeConfig, LOCAL)
    path = tmp_path / "frozen.yaml"
    path.write_text(config_to_yaml(cfg))
    again = load_config(SynthesizeConfig, path)
    assert again == cfg and config_hash(again) == config_hash(cfg)
    assert config_hash(load_config(SynthesizeConfig, LOCAL, ["round=1"])) != config_hash(cfg)


def test_config_is_frozen():
    cfg = load_config(SynthesizeConfig, LOCAL)
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises ValidationError on frozen
        cfg.round = 3


def _job_of(path: Path) -> str:
    """Which job a shipped config is for: its `job:` key, else its name (train/*, *-local)."""
    declared = (yaml.safe_load(path.read_text()) or {}).get("job")
    if declared:
        return declared
    if path.parent.name == "train":
        return "train"
    stem = path.stem.removesuffix("-local")
    return "synthesize" if stem == "local" else stem


@pytest.mark.parametrize(
    "path",
    sorted((REPO / "jobs" / "configs").rglob("*.yaml")),
    ids=lambda p: str(p.relative_to(REPO / "jobs" / "configs")),
)
def test_every_shipped_config_validates(path):
    from promptcot_ray.job_configs import JOB_CONFIGS

    cfg = load_config(JOB_CONFIGS[_job_of(path)], path)
    assert cfg.job == _job_of(path)


def test_shipped_student_configs_carry_the_method_settings():
    from promptcot_ray.train.config import TrainConfig

    train_dir = REPO / "jobs" / "configs" / "train"
    for name in ("student-ds1.5b-8gpu", "student-ds7b-8gpu"):
        cfg = load_config(TrainConfig, train_dir / f"{name}.yaml")
        assert (cfg.learning_rate, cfg.epochs, cfg.max_length) == (5e-6, 2, 16384)
        assert (cfg.micro_batch_size, cfg.gradient_accumulation_steps) == (1, 8)
        assert (cfg.warmup_steps, cfg.weight_decay, cfg.precision) == (100, 0.01, "bf16")
        assert cfg.gradient_checkpointing and cfg.num_workers == 8
        assert cfg.deepspeed.zero_stage == 2 and cfg.deepspeed.offload_optimizer
    big = load_config(TrainConfig, train_dir / "student-32b-8gpu.yaml")
    assert big.deepspeed.zero_stage == 3 and big.deepspeed.offload_params
    assert (big.learning_rate, big.gradient_accumulation_steps) == (2e-6, 2)


def test_synthesize_quality_switch_takes_the_quality_gate_settings(tmp_path):
    from promptcot_ray.quality.config import QualityConfig, QualityGates

    off = load_config(SynthesizeConfig, LOCAL)
    assert off.quality is None
    on = load_config(
        SynthesizeConfig,
        LOCAL,
        ["quality={benchmarks: [{name: b, path: /x.jsonl}], minhash_threshold: 0.7}"],
    )
    assert isinstance(on.quality, QualityGates) and on.quality.minhash_threshold == 0.7
    assert QualityConfig(**dict(on.quality)).benchmarks[0].name == "b"
    with pytest.raises(ConfigError, match=r"quality\.ngram"):
        load_config(SynthesizeConfig, LOCAL, ["quality.ngram=1"])


def test_a_relative_local_run_dir_is_taken_from_the_working_directory(tmp_path, monkeypatch):
    """Ray Train runs its workers in folders of their own: a relative run directory must be
    fixed where the command runs, or the workers write the loss curve and export elsewhere."""
    monkeypatch.chdir(tmp_path)
    assert StorageConfig(run_dir="runs/x").run_dir == str(tmp_path / "runs" / "x")
    assert StorageConfig(run_dir="s3://bucket/runs/x").run_dir == "s3://bucket/runs/x"
    assert StorageConfig(run_dir="/abs/run").run_dir == "/abs/run"


def test_actor_pool_sizes_are_set_in_config_and_leave_the_hash_alone():
    cfg = load_config(SynthesizeConfig, LOCAL)
    assert cfg.ray.actor_pools.labelling == 2 and cfg.ray.actor_pools.tokenising == 4
    sets = ["ray.actor_pools.labelling=16", "ray.actor_pools.grading=8"]
    bigger = load_config(SynthesizeConfig, LOCAL, sets)
    assert (bigger.ray.actor_pools.labelling, bigger.ray.actor_pools.grading) == (16, 8)
    # how fast a job runs, not what it writes: a finished stage is not re-run for it
    assert config_hash(bigger) == config_hash(cfg)
    with pytest.raises(ConfigError, match=r"ray\.actor_pools\.tokenising"):
        load_config(SynthesizeConfig, LOCAL, ["ray.actor_pools.tokenising=0"])
