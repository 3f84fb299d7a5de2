from __future__ import annotations

import gymnasium as gym
import pytest

import metalore
from metalore.config import PRESETS, ConfigError, deep_merge, load_config_file, make_scenario


def test_paper_defaults_match_model_md():
    cfg = make_scenario("paper").config
    assert cfg["episode"]["steps"] == 100 and cfg["episode"]["seed"] == 111
    assert cfg["bs"]["bandwidth_hz"] == 100e6 and cfg["bs"]["frequency_mhz"] == 3500
    assert cfg["bs"]["compute_units_per_s"] == 100 and cfg["bs"]["positions_m"] == ((100.0, 100.0),)
    assert cfg["ue"]["count"] == 10 and cfg["ue"]["request_probability"] == 0.7
    assert cfg["sensor"]["count"] == 15 and cfg["sensor"]["period_steps"] == 1
    assert cfg["reward"]["sync_reward"] == 10 and cfg["reward"]["aosi_discount"] == 0.9
    assert cfg["reward"]["late_penalty"] == -1 and cfg["reward"]["e2e_delay_threshold_steps"] == 2
    assert cfg["observation"]["features"] == ("queue_lengths",)


def test_deep_merge_keeps_siblings():
    merged = deep_merge({"ue": {"count": 10, "speed_mps": 1.5}}, {"ue": {"count": 3}})
    assert merged == {"ue": {"count": 3, "speed_mps": 1.5}}


def test_override_reaches_env():
    env = gym.make("MetaLore/Paper-v0", config={"ue": {"count": 4}, "episode": {"steps": 7}})
    assert env.unwrapped.scenario.num_ues == 4 and env.unwrapped.scenario.steps == 7


@pytest.mark.parametrize(
    ("override", "fragment"),
    [
        ({"ue": {"cout": 3}}, "unknown config key 'ue.cout'; did you mean 'count'?"),
        ({"uee": {}}, "unknown config key 'uee'"),
        ({"ue": {"count": -1}}, "'ue.count' = -1"),
        ({"ue": {"request_probability": 1.5}}, "'ue.request_probability' = 1.5"),
        ({"bs": {"bandwidth_hz": 0}}, "'bs.bandwidth_hz' = 0.0"),
        ({"bs": {"positions_m": [[500, 10]]}}, "'bs.positions_m[0]'"),
        ({"channel": {"model": "free_space"}}, "'channel.model' = 'free_space'"),
        ({"episode": {"steps": 2.5}}, "'episode.steps' = 2.5"),
        ({"episode": {"steps": 2**31}}, "'episode.steps' = 2147483648 is invalid: expected an integer <= 2147483647"),
        ({"ue": {"positions_m": [[1, 2]]}}, "'ue.positions_m'"),
        ({"reward": {"aosi_discount": float("nan")}}, "'reward.aosi_discount'"),
        ({"observation": {"features": ["queue_lengths", "bogus"]}}, "'observation.features[1]' = 'bogus'"),
        ({"sensor": {"placement": {"min_distance_m": 95}}}, "'sensor.placement.min_distance_m' = 95"),
        (
            {"traffic": {"phases": [{"start_step": 5, "request_probability": 0.1, "sensor_period_steps": 1}]}},
            "'traffic.phases'",
        ),
        ({"log": {"jobs": "yes"}}, "'log.jobs' = 'yes'"),
    ],
)
def test_invalid_config_names_the_key(override, fragment):
    with pytest.raises(ConfigError) as err:
        make_scenario("paper", override)
    assert fragment in str(err.value)


def test_unknown_preset():
    with pytest.raises(ConfigError, match="unknown scenario preset 'papr'"):
        make_scenario("papr")


def test_infeasible_sensor_placement_is_a_clear_error_not_a_hang():
    env = metalore.MetaLoreEnv(config={"sensor": {"count": 400}})
    with pytest.raises(ConfigError, match="cannot place 400 sensors"):
        env.reset(seed=0)


def test_no_sensors_with_ues_rejected():
    with pytest.raises(ConfigError, match=r"sensor\.count"):
        metalore.MetaLoreEnv(config={"sensor": {"count": 0}})


def test_yaml_and_toml_files(tmp_path):
    yaml_file = tmp_path / "s.yaml"
    yaml_file.write_text("preset: small\nue:\n  count: 5\n")
    toml_file = tmp_path / "s.toml"
    toml_file.write_text("[ue]\ncount = 6\n[episode]\nsteps = 12\n")
    preset, overrides = load_config_file(yaml_file)
    assert preset == "small" and make_scenario(preset, overrides).num_ues == 5
    preset, overrides = load_config_file(toml_file)
    assert preset is None and make_scenario("paper", overrides).steps == 12


def test_bad_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config_file(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("ue: [1, 2\n")
    with pytest.raises(ConfigError, match="cannot parse config file"):
        load_config_file(bad)
    txt = tmp_path / "s.json"
    txt.write_text("{}")
    with pytest.raises(ConfigError, match=r"use \.yaml, \.yml or \.toml"):
        load_config_file(txt)
    listing = tmp_path / "list.yaml"
    listing.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must contain a mapping"):
        load_config_file(listing)


def test_presets_are_frozen_and_valid():
    for name in PRESETS:
        scenario = make_scenario(name)
        with pytest.raises(TypeError):
            scenario.config["ue"]["count"] = 3  # type: ignore[index]
        assert make_scenario(name, scenario.to_dict()) == scenario
