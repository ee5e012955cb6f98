"""Config loading: YAML + dotted overrides, errors that name the key, the shipped configs."""

from __future__ import annotations

from pathlib import Path

import pytest

from promptcot_ray.config import (
    ConfigError,
    SynthesizeConfig,
    apply_overrides,
    config_hash,
    config_to_yaml,
    load_config,
)

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
